//! The page shell and the small pieces every page uses: navigation, the
//! read-only banner, action buttons (a POST form with the CSRF token),
//! times (relative, the absolute time on hover), status badges.

use axum::response::{Html, IntoResponse, Response};
use http::StatusCode;
use maud::{DOCTYPE, Markup, html};

use super::session::Session;
use crate::domain::Timestamp;

pub const CSS_URL: &str = "/ui/assets/console.css";
pub const JS_URL: &str = "/ui/assets/console.js";

/// A whole page.
pub fn page(title: &str, session: Option<&Session>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · fedsync" }
                link rel="stylesheet" href=(CSS_URL);
                script src=(JS_URL) defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/ui/" { "fedsync" }
                    @if let Some(s) = session {
                        nav aria-label="Console" {
                            a href="/ui/" { "Overview" }
                            a href="/ui/peers/new" { "Add a peer" }
                            a href="/ui/modules" { "Modules" }
                            a href="/ui/audit" { "Audit log" }
                            a href="/ui/tokens" { "Admin tokens" }
                        }
                        form.signout method="post" action="/ui/logout" {
                            (csrf_field(s))
                            span.who { (s.identity.name) }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                @if let Some(s) = session {
                    @if !s.can_write() {
                        p.readonly role="status" {
                            "Read-only session: you can look at everything and change nothing."
                        }
                    }
                }
                main id="main" { (body) }
            }
        }
    }
}

/// A page as a 200 answer.
pub fn respond(title: &str, session: &Session, body: Markup) -> Response {
    Html(page(title, Some(session), body).into_string()).into_response()
}

/// The page of a refused or failed request.
pub fn error_page(status: StatusCode, message: &str) -> Markup {
    let signed_out = status == StatusCode::UNAUTHORIZED;
    page(
        "Cannot do that",
        None,
        html! {
            h1 { "Cannot do that" }
            p.error role="alert" { "error: " (message) }
            p {
                @if signed_out {
                    a href="/ui/login" { "Sign in" }
                } @else {
                    a href="/ui/" { "Back to the overview" }
                }
            }
        },
    )
}

pub fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// A button that POSTs to `url`; disabled for a read-only session.
pub fn action(session: &Session, url: &str, label: &str, class: &str) -> Markup {
    html! {
        form.inline method="post" action=(url) {
            (csrf_field(session))
            button class=(class) type="submit" disabled[!session.can_write()] { (label) }
        }
    }
}

/// A time, relative to now, with the absolute time on hover.
pub fn time(t: Option<Timestamp>, now: Timestamp) -> Markup {
    match t {
        None => html! { span.muted { "never" } },
        Some(t) => html! {
            time datetime=(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                title=(t.format("%Y-%m-%d %H:%M:%S UTC")) { (relative(t, now)) }
        },
    }
}

/// "3 min ago", "in 2 h".
pub fn relative(t: Timestamp, now: Timestamp) -> String {
    let seconds = (now - t).num_seconds();
    let (past, s) = (seconds >= 0, seconds.unsigned_abs());
    let amount = match s {
        0..5 => return "just now".to_owned(),
        5..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86400 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86400),
    };
    if past {
        format!("{amount} ago")
    } else {
        format!("in {amount}")
    }
}

/// A status word with its colour.
pub fn badge(status: &str) -> Markup {
    let word = if status.is_empty() { "never" } else { status };
    html! { span class={ "badge s-" (word) } { (word) } }
}

/// The notice a redirect after an action names (`?done=...`): fixed texts,
/// so nothing from a request is echoed.
pub fn notice(code: Option<&str>) -> Markup {
    let text = match code.unwrap_or("") {
        "added" => {
            "Peer added from its node URI. Check the host and the inviter's node id with its admin, then send the handshake request with Pair."
        }
        "paired" => "Done: the node is paired.",
        "requested" => "Handshake request accepted by the peer: its admin now approves it.",
        "refused" => "The handshake request was refused; a new node URI invites the peer again.",
        "scheduled" => "Schedules saved.",
        "paused" => "Scheduled syncs are paused.",
        "resumed" => "Scheduled syncs resumed.",
        "removed" => "The node was removed; its tokens are revoked.",
        "sync" => "Sync started: the runs below show how it goes.",
        "exposed" => "Exposure saved.",
        "unexposed" => "The module is no longer exposed to this node.",
        "mapped" => "Mapping saved.",
        "unmapped" => "Mapping removed.",
        "revoked" => "Token revoked.",
        _ => return html! {},
    };
    html! { p.notice role="status" { (text) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(seconds: i64, expected: &str) {
        let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let t = now - chrono::Duration::seconds(seconds);
        assert_eq!(relative(t, now), expected, "{seconds} s");
    }

    #[test]
    fn times_read_relative_to_now() {
        check(0, "just now");
        check(4, "just now");
        check(-3, "just now");
        check(5, "5 s ago");
        check(59, "59 s ago");
        check(60, "1 min ago");
        check(3599, "59 min ago");
        check(3600, "1 h ago");
        check(86_399, "23 h ago");
        check(86_400, "1 days ago");
        check(-300, "in 5 min");
    }

    #[test]
    fn notices_are_fixed_texts_and_unknown_codes_say_nothing() {
        assert!(notice(Some("paired")).into_string().contains("paired"));
        assert_eq!(notice(Some("<script>")).into_string(), "");
        assert_eq!(notice(None).into_string(), "");
    }
}
