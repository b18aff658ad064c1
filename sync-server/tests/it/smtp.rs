//! Email notifications through a real SMTP conversation: a small SMTP server of the test's own (accepting
//! the session, recording each message) on loopback; the server's sender delivers a queued notification,
//! retries with back-off after a temporary refusal, and sends notifications without an email address to the
//! local outbox file instead.

use std::sync::{Arc, Mutex};

use chrono::{Duration, TimeZone as _, Utc};
use tessera_packet::clock::FixedClock;
use tessera_server::notify::{self, Notification};
use tessera_server::settings::{Settings, SmtpSettings, SmtpTls};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

/// One message as the SMTP server received it.
#[derive(Debug, Clone, Default)]
struct Received {
    from: String,
    to: Vec<String>,
    data: String,
}

#[derive(Default)]
struct MailServer {
    messages: Mutex<Vec<Received>>,
    /// Sessions whose RCPT is answered with a temporary failure (451), counted down.
    refuse: Mutex<u32>,
    /// Every command line received.
    commands: Mutex<Vec<String>>,
}

/// Serves SMTP sessions on loopback until the task is dropped; returns the port.
async fn mail_server(state: Arc<MailServer>) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let state = Arc::clone(&state);
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r).lines();
                w.write_all(b"220 test.local ESMTP ready\r\n").await.unwrap();
                let mut cur = Received::default();
                while let Ok(Some(line)) = lines.next_line().await {
                    state.commands.lock().unwrap().push(line.clone());
                    let upper = line.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                        b"250-test.local\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
                    } else if upper.starts_with("MAIL FROM:") {
                        cur = Received {
                            from: line[10..].trim().to_owned(),
                            ..Received::default()
                        };
                        b"250 OK\r\n"
                    } else if upper.starts_with("RCPT TO:") {
                        let mut refuse = state.refuse.lock().unwrap();
                        if *refuse > 0 {
                            *refuse -= 1;
                            b"451 4.3.0 try again later\r\n"
                        } else {
                            cur.to.push(line[8..].trim().to_owned());
                            b"250 OK\r\n"
                        }
                    } else if upper == "DATA" {
                        w.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await.unwrap();
                        let mut data = String::new();
                        while let Ok(Some(l)) = lines.next_line().await {
                            if l == "." {
                                break;
                            }
                            data.push_str(&l);
                            data.push('\n');
                        }
                        cur.data = data;
                        state.messages.lock().unwrap().push(cur.clone());
                        b"250 OK queued\r\n"
                    } else if upper.starts_with("RSET") || upper.starts_with("NOOP") {
                        b"250 OK\r\n"
                    } else if upper.starts_with("QUIT") {
                        let _ = w.write_all(b"221 bye\r\n").await;
                        return;
                    } else {
                        b"502 command not implemented\r\n"
                    };
                    if w.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, task)
}

fn note(rid: &str, channel: &str, address: &str, language: &str) -> Notification {
    Notification {
        rid: rid.into(),
        kind: notify::kind::UIN_ISSUED.into(),
        uin: Some("2749305816".into()),
        reason: None,
        channel: Some(channel.into()),
        address: Some(address.into()),
        language: Some(language.into()),
    }
}

#[tokio::test]
async fn email_notifications_are_delivered_over_smtp_with_back_off_and_phone_ones_to_the_outbox() {
    let mail = Arc::new(MailServer::default());
    *mail.refuse.lock().unwrap() = 1;
    let (port, server_task) = mail_server(Arc::clone(&mail)).await;
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings {
        data_dir: dir.path().join("data"),
        listen: "127.0.0.1:0".parse().unwrap(),
        uin_pool_target: 10,
        uin_pool_low_water: 5,
        pipeline_workers: 0,
        smtp: Some(SmtpSettings {
            host: "127.0.0.1".into(),
            port: Some(port),
            user: None,
            password: None,
            from: "Registration Office <no-reply@id.example.org>".into(),
            tls: SmtpTls::None,
        }),
        ..Settings::default()
    };
    let clock = Arc::new(FixedClock::new(
        Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).unwrap(),
    ));
    let state = tessera_server::prepare(settings, clock.clone()).await.unwrap();
    let rid = "10001100010000120261129100000";
    notify::enqueue(&state, &note(rid, "email", "amina.diallo@example.org", "eng"))
        .await
        .unwrap();

    // The first attempt is refused for now (451): nothing delivered, retried only after the back-off.
    assert!(notify::run_once(&state, "t").await.unwrap());
    assert!(mail.messages.lock().unwrap().is_empty());
    clock.advance(Duration::seconds(29));
    assert!(!notify::run_once(&state, "t").await.unwrap(), "still backing off");
    clock.advance(Duration::seconds(1));
    assert!(notify::run_once(&state, "t").await.unwrap());
    {
        let got = mail.messages.lock().unwrap();
        assert_eq!(got.len(), 1);
        let m = &got[0];
        assert!(m.from.contains("no-reply@id.example.org"), "{m:?}");
        assert_eq!(m.to, ["<amina.diallo@example.org>"]);
        assert!(
            m.data.contains("Subject: Your national identity number (UIN)"),
            "{}",
            m.data
        );
        assert!(m.data.contains("To: amina.diallo@example.org"), "{}", m.data);
        assert!(m.data.contains("Your UIN is 2749305816."), "{}", m.data);
        assert!(m.data.contains(rid));
    }
    assert!(!notify::run_once(&state, "t").await.unwrap(), "sent once");

    // French, and a resident with a phone number only: the outbox file (no SMS gateway).
    let rid2 = "10001100010000220261129100500";
    let rid3 = "10001100010000320261129101000";
    notify::enqueue(&state, &note(rid2, "email", "kofi@example.org", "fra"))
        .await
        .unwrap();
    notify::enqueue(&state, &note(rid3, "phone", "+12345678901", "eng"))
        .await
        .unwrap();
    while notify::run_once(&state, "t").await.unwrap() {}
    let got = mail.messages.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "the phone one is not emailed");
    assert!(
        got[1].data.contains("Subject: =?utf-8?") || got[1].data.contains("Subject: Votre"),
        "{}",
        got[1].data
    );
    let outbox = std::fs::read_to_string(dir.path().join("data/outbox/notifications.jsonl")).unwrap();
    assert_eq!(outbox.lines().count(), 1);
    assert!(outbox.contains(rid3) && outbox.contains("+12345678901"));
    server_task.abort();
}

#[tokio::test]
async fn an_smtp_section_with_a_bad_sender_address_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings {
        data_dir: dir.path().join("data"),
        listen: "127.0.0.1:0".parse().unwrap(),
        uin_pool_target: 10,
        uin_pool_low_water: 5,
        smtp: Some(SmtpSettings {
            host: "127.0.0.1".into(),
            port: None,
            user: None,
            password: None,
            from: "not an address".into(),
            tls: SmtpTls::None,
        }),
        ..Settings::default()
    };
    let err = tessera_server::prepare(settings, Arc::new(tessera_packet::clock::SystemClock))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("smtp.from"), "{err}");
}

#[tokio::test]
async fn starttls_is_required_when_configured_so_nothing_goes_out_in_clear() {
    let mail = Arc::new(MailServer::default());
    let (port, server_task) = mail_server(Arc::clone(&mail)).await;
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings {
        data_dir: dir.path().join("data"),
        listen: "127.0.0.1:0".parse().unwrap(),
        uin_pool_target: 10,
        uin_pool_low_water: 5,
        pipeline_workers: 0,
        smtp: Some(SmtpSettings {
            host: "localhost".into(),
            port: Some(port),
            user: Some("tessera".into()),
            password: Some(tessera_server::settings::Secret::new("s3cret")),
            from: "no-reply@id.example.org".into(),
            tls: SmtpTls::Starttls,
        }),
        ..Settings::default()
    };
    let clock = Arc::new(FixedClock::new(
        Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).unwrap(),
    ));
    let state = tessera_server::prepare(settings, clock.clone()).await.unwrap();
    notify::enqueue(
        &state,
        &note("10001100010000120261129100000", "email", "a@example.org", "eng"),
    )
    .await
    .unwrap();
    // The test server offers no STARTTLS: the sender refuses to continue in clear.
    assert!(notify::run_once(&state, "t").await.unwrap());
    assert!(mail.messages.lock().unwrap().is_empty());
    assert!(
        !notify::run_once(&state, "t").await.unwrap(),
        "kept for a retry after the back-off"
    );
    clock.advance(Duration::seconds(30));
    assert!(notify::run_once(&state, "t").await.unwrap(), "retried");
    assert!(mail.messages.lock().unwrap().is_empty());
    let commands = mail.commands.lock().unwrap().clone();
    assert!(commands.iter().any(|c| c.starts_with("EHLO")), "{commands:?}");
    assert!(
        !commands
            .iter()
            .any(|c| c.starts_with("AUTH") || c.starts_with("MAIL")),
        "no credentials or mail in clear: {commands:?}"
    );
    server_task.abort();
}
