//! The pairing state machine: which action each side may take in which
//! status. Statuses are Corteza's (`pending` -> `pair_requested` -> `paired`)
//! plus `failed`, which always carries a reason and can be retried.
//!
//! | side    | action              | allowed from                                  | leads to |
//! |---------|---------------------|-----------------------------------------------|----------|
//! | inviter | new node URI        | any (a paired node goes back to pending: re-pair) | pending |
//! | inviter | accept handshake    | pending, with a live OTT                      | pair_requested |
//! | inviter | confirm             | pair_requested; failed after a handshake came | paired / failed |
//! | inviter | refuse              | as confirm                                    | failed (a new node URI starts over) |
//! | invitee | pair                | pending, failed, pair_requested; OTT held     | pair_requested / failed |
//! | invitee | complete handshake  | pair_requested                                | paired |

use crate::domain::{Node, PairingStatus, Role};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    GenerateUri,
    AcceptHandshake,
    Confirm,
    Refuse,
    Pair,
    CompleteHandshake,
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Action::GenerateUri => "generate a node URI for",
            Action::AcceptHandshake => "accept a handshake for",
            Action::Confirm => "confirm",
            Action::Refuse => "refuse the handshake request of",
            Action::Pair => "pair",
            Action::CompleteHandshake => "complete the handshake of",
        }
    }
}

/// What the flow knows beyond the node row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Facts {
    /// We hold a token the peer issued to us.
    pub holds_peer_token: bool,
    /// We hold the OTT from the peer's node URI.
    pub holds_pair_token: bool,
}

/// `Err` says why the action is not possible now and what to do instead.
pub fn check_action(node: &Node, action: Action, facts: Facts) -> Result<(), String> {
    use PairingStatus::{Failed, PairRequested, Paired, Pending};
    let id = node.id;
    let status = node.status.as_str();
    if node.deleted_at.is_some() {
        return Err(format!("node {id} was removed"));
    }
    let refuse = |hint: String| {
        Err(format!(
            "cannot {} node {id} in status {status}: {hint}",
            action.verb()
        ))
    };
    match (node.role, action) {
        (Role::Inviter, Action::GenerateUri) => Ok(()),
        (Role::Inviter, Action::AcceptHandshake) => match node.status {
            Pending => Ok(()),
            _ => refuse("a handshake is accepted only while the node waits for one".into()),
        },
        (Role::Inviter, Action::Confirm) => match node.status {
            PairRequested if facts.holds_peer_token => Ok(()),
            Failed if facts.holds_peer_token && node.handshake_requested_at.is_some() => Ok(()),
            Pending => refuse("no handshake request has arrived yet; the peer's admin runs `fedsync node pair`".into()),
            Paired => refuse("it is already paired".into()),
            _ => refuse("no usable handshake request; generate a new node URI with `fedsync node uri`".into()),
        },
        (Role::Inviter, Action::Refuse) => match node.status {
            PairRequested if facts.holds_peer_token => Ok(()),
            Failed if facts.holds_peer_token && node.handshake_requested_at.is_some() => Ok(()),
            Paired => refuse(format!("it is already paired; to end the pairing, remove it with `fedsync node rm {id}`")),
            _ => refuse("no handshake request is waiting".into()),
        },
        (Role::Invitee, Action::Pair) => match node.status {
            Pending | Failed | PairRequested if facts.holds_pair_token => Ok(()),
            Paired => refuse("it is already paired; to pair again, add a new node URI from the peer".into()),
            _ => refuse("the node URI's token was used; ask the peer's admin for a new node URI and run `fedsync node add-uri`".into()),
        },
        (Role::Invitee, Action::CompleteHandshake) => match node.status {
            PairRequested => Ok(()),
            _ => refuse("no handshake request of ours is waiting".into()),
        },
        (
            Role::Invitee,
            Action::GenerateUri | Action::AcceptHandshake | Action::Confirm | Action::Refuse,
        ) => refuse(
            "this node was added from the peer's node URI; the inviting side generates URIs and confirms".into(),
        ),
        (Role::Inviter, Action::Pair | Action::CompleteHandshake) => refuse(
            "this node invited the peer; the peer's admin runs `fedsync node pair` and you run `fedsync node confirm`".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{NodeId, now};

    fn node(role: Role, status: PairingStatus, handshake_seen: bool) -> Node {
        let mut node = Node::new_pending(
            NodeId::from_u64(7).unwrap(),
            role,
            "n",
            "https://x/federation",
            "",
            now(),
        );
        node.status = status;
        if handshake_seen {
            node.handshake_requested_at = Some(now());
        }
        node
    }

    fn check(
        role: Role,
        status: PairingStatus,
        action: Action,
        facts: Facts,
        seen: bool,
        allowed: bool,
    ) {
        let result = check_action(&node(role, status, seen), action, facts);
        assert_eq!(
            result.is_ok(),
            allowed,
            "{role:?} {status:?} {action:?} {facts:?}: {result:?}"
        );
    }

    const NONE: Facts = Facts {
        holds_peer_token: false,
        holds_pair_token: false,
    };
    const PEER: Facts = Facts {
        holds_peer_token: true,
        holds_pair_token: false,
    };
    const OTT: Facts = Facts {
        holds_peer_token: false,
        holds_pair_token: true,
    };

    #[test]
    fn the_transition_table() {
        use PairingStatus::*;
        use Role::*;
        check(Inviter, Paired, Action::GenerateUri, NONE, true, true);
        check(Inviter, Pending, Action::AcceptHandshake, NONE, false, true);
        check(
            Inviter,
            PairRequested,
            Action::AcceptHandshake,
            PEER,
            true,
            false,
        );
        check(Inviter, Paired, Action::AcceptHandshake, PEER, true, false);
        check(Inviter, Failed, Action::AcceptHandshake, NONE, false, false);
        check(Inviter, PairRequested, Action::Confirm, PEER, true, true);
        check(Inviter, PairRequested, Action::Confirm, NONE, true, false);
        check(Inviter, Failed, Action::Confirm, PEER, true, true);
        check(Inviter, Failed, Action::Confirm, PEER, false, false);
        check(Inviter, Pending, Action::Confirm, PEER, false, false);
        check(Inviter, Paired, Action::Confirm, PEER, true, false);
        check(Inviter, Pending, Action::Pair, OTT, false, false);
        check(Invitee, Pending, Action::Pair, OTT, false, true);
        check(Invitee, Failed, Action::Pair, OTT, false, true);
        check(Invitee, PairRequested, Action::Pair, OTT, false, true);
        check(Invitee, Pending, Action::Pair, NONE, false, false);
        check(Invitee, Paired, Action::Pair, OTT, false, false);
        check(
            Invitee,
            PairRequested,
            Action::CompleteHandshake,
            NONE,
            false,
            true,
        );
        check(
            Invitee,
            Pending,
            Action::CompleteHandshake,
            NONE,
            false,
            false,
        );
        check(
            Invitee,
            Paired,
            Action::CompleteHandshake,
            PEER,
            false,
            false,
        );
        check(Invitee, Pending, Action::GenerateUri, OTT, false, false);
        check(Invitee, PairRequested, Action::Confirm, PEER, false, false);
        check(Inviter, PairRequested, Action::Refuse, PEER, true, true);
        check(Inviter, Failed, Action::Refuse, PEER, true, true);
        check(Inviter, Failed, Action::Refuse, NONE, true, false);
        check(Inviter, Pending, Action::Refuse, NONE, false, false);
        check(Inviter, Paired, Action::Refuse, PEER, true, false);
        check(Invitee, PairRequested, Action::Refuse, PEER, false, false);
    }

    #[test]
    fn refusals_say_what_to_do() {
        let message = check_action(
            &node(Role::Inviter, PairingStatus::Pending, false),
            Action::Confirm,
            PEER,
        )
        .unwrap_err();
        assert!(message.contains("fedsync node pair"), "{message}");
        let mut gone = node(Role::Inviter, PairingStatus::Paired, true);
        gone.deleted_at = Some(now());
        assert!(
            check_action(&gone, Action::GenerateUri, NONE)
                .unwrap_err()
                .contains("removed")
        );
    }
}
