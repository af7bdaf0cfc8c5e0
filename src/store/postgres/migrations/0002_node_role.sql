-- Which side of the pair a node record is on: 'inviter' (we handed out the
-- node URI) or 'invitee' (we added the node from the peer's URI).
ALTER TABLE nodes ADD COLUMN role TEXT NOT NULL DEFAULT 'inviter';
