//! The contract web page of the seed's web server 1032 (Fig. 6 steps 6020–6040, the optional
//! second contract of step 6120): real HTML with the terms and a form whose two submit buttons
//! post `decision=accept` or `decision=decline` back to the same URL.

use super::db::Contract;

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n</head>\n<body>\n{body}</body>\n</html>\n",
        escape(title)
    )
}

/// The terms of each kind of contract.
fn terms(kind: &str) -> (&'static str, &'static [&'static str]) {
    match kind {
        "binding" => (
            "Multi-IMSI single-MSISDN service agreement",
            &[
                "Your number will ring on every device bound to it (flexible alerting) or on each in turn (mobile access hunting).",
                "Each bound device holds its own subscription (IMSI); calls and SMS to your number reach the active ones.",
                "You may unbind a device at any time; a device without its own number then leaves the network.",
            ],
        ),
        _ => (
            "Service contract for an additional device",
            &[
                "A profile for your additional device (identified by its EID) will be created and bound to your account.",
                "The profile can be downloaded once, onto that device only.",
                "Charges follow your current plan. You may end the service at any time.",
            ],
        ),
    }
}

/// `GET /contract/{id}`: the terms and the form, or the recorded answer.
pub fn render(contract: &Contract, action: &str) -> String {
    let (title, clauses) = terms(&contract.kind);
    let mut body = format!(
        "<h1>{}</h1>\n<p>For the subscriber <strong>{}</strong>.</p>\n<ol>\n",
        escape(title),
        escape(&contract.msisdn)
    );
    for c in clauses {
        body.push_str(&format!("<li>{}</li>\n", escape(c)));
    }
    body.push_str("</ol>\n");
    if contract.state == "pending" {
        body.push_str(&format!(
            "<form method=\"post\" action=\"{}\">\n\
             <button type=\"submit\" name=\"decision\" value=\"accept\">Accept</button>\n\
             <button type=\"submit\" name=\"decision\" value=\"decline\">Decline</button>\n\
             </form>\n",
            escape(action)
        ));
    } else {
        body.push_str(&format!(
            "<p id=\"answer\">You have {} this contract.</p>\n",
            escape(&contract.state)
        ));
    }
    page(title, &body)
}

/// The page after a decision.
pub fn answered(contract: &Contract, message: &str) -> String {
    page(
        "Contract answered",
        &format!(
            "<h1>Contract {}</h1>\n<p id=\"answer\">{}</p>\n",
            escape(&contract.state),
            escape(message)
        ),
    )
}

/// An error page (bad decision, unknown or already answered contract).
pub fn error(code: &str, message: &str) -> String {
    page(
        "Contract",
        &format!(
            "<h1>Cannot record this answer</h1>\n<p id=\"error\" data-code=\"{}\">{}</p>\n",
            escape(code),
            escape(message)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract(state: &str) -> Contract {
        Contract {
            id: "c-1".into(),
            operation_id: "op-1".into(),
            msisdn: "+15555550100".into(),
            kind: "service".into(),
            state: state.into(),
            answered_at: None,
        }
    }

    #[test]
    fn a_pending_contract_shows_terms_and_both_buttons() {
        insta::assert_snapshot!(render(&contract("pending"), "/contract/c-1"));
    }

    #[test]
    fn an_answered_contract_shows_the_answer_and_no_form() {
        let html = render(&contract("declined"), "/contract/c-1");
        assert!(html.contains("You have declined this contract."));
        assert!(!html.contains("<form"));
    }

    #[test]
    fn escapes_what_it_prints() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
