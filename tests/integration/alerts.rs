//! After each run: a Prometheus metrics file, and a ping to a monitoring URL (success, or /fail
//! when the run is degraded). The ping goes to a real HTTP listener on 127.0.0.1.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use crate::support::*;

/// A minimal HTTP server on 127.0.0.1 that records request lines and answers 200.
fn listener() -> (String, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in l.incoming().take(20) {
            let Ok(mut s) = stream else { continue };
            let mut first = String::new();
            let mut r = BufReader::new(s.try_clone().expect("clone"));
            let _ = r.read_line(&mut first);
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            log.lock().expect("lock").push(first.trim().to_string());
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nOK");
        }
    });
    (format!("http://{addr}/ping/school-nightly"), seen)
}

#[test]
fn metrics_and_pings_follow_each_run() {
    let dir = example();
    let (url, seen) = listener();
    let sched = dir.path().join("schedules/nightly.toml");
    let mut text = fs::read_to_string(&sched).expect("read");
    text.push_str(&format!(
        "\n[alerts]\nping_url = \"{url}\"\nmetrics_file = \"metrics/firesafe.prom\"\n"
    ));
    fs::write(&sched, text).expect("write");
    let state = dir.path().join("state");
    let run = |args: &[&str]| {
        firesafe()
            .arg("run")
            .args(args)
            .arg("--config-dir")
            .arg(dir.path())
            .arg("--state-dir")
            .arg(&state)
            .output()
            .expect("run")
    };
    assert_success(&run(&["nightly", "--init"]), "first run");
    let metrics =
        fs::read_to_string(dir.path().join("metrics/firesafe.prom")).expect("metrics file");
    assert!(
        metrics.contains("firesafe_run_outcome{schedule=\"nightly\",outcome=\"complete\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("firesafe_verdict{schedule=\"nightly\",source=\"admin\"} 0"),
        "{metrics}"
    );
    assert!(metrics.contains("firesafe_copy_newest_timestamp_seconds{schedule=\"nightly\",source=\"curriculum\",target=\"offsite\"}"), "{metrics}");
    assert_eq!(
        seen.lock().expect("lock").as_slice(),
        ["GET /ping/school-nightly HTTP/1.1"]
    );

    // The offsite copy goes away: the run is degraded and the ping says so.
    fs::rename(dir.path().join("demo/offsite"), dir.path().join("away")).expect("move");
    let out = run(&["nightly"]);
    assert_exit(&out, 1, "degraded run");
    assert_eq!(
        seen.lock().expect("lock").last().map(String::as_str),
        Some("GET /ping/school-nightly/fail HTTP/1.1")
    );
    let metrics =
        fs::read_to_string(dir.path().join("metrics/firesafe.prom")).expect("metrics file");
    assert!(
        metrics.contains("outcome=\"degraded\"} 1")
            && metrics.contains("firesafe_verdict{schedule=\"nightly\",source=\"admin\"} 2"),
        "{metrics}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("school-nightly"),
        "the ping URL was printed: {stderr}"
    );
}

/// The Python with aiosmtpd that tests/run.sh prepares.
pub fn smtp_python() -> Option<String> {
    let py = std::env::var("FIRESAFE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = std::process::Command::new(&py)
        .args(["-c", "import aiosmtpd"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok && std::env::var_os("CI").is_some() {
        panic!(
            "the SMTP test needs aiosmtpd: run the suite through tests/run.sh, which installs it"
        );
    }
    ok.then_some(py)
}

/// A real SMTP server (aiosmtpd, tests/scripts/smtp-server.py) on 127.0.0.1 with STARTTLS and
/// authentication (user firesafe, password s3cret-smtp-pass); messages land in `mail`.
pub struct SmtpServer {
    pub port: u16,
    pub cert: std::path::PathBuf,
    pub mail: std::path::PathBuf,
    pub child: std::process::Child,
}

/// Stops the SMTP server and returns the messages it received, whole, in the order of their
/// file names.
pub fn stop_and_read(server: &mut std::process::Child, mail: &std::path::Path) -> Vec<String> {
    let _ = server.kill();
    let _ = server.wait();
    let mut messages: Vec<_> = fs::read_dir(mail)
        .expect("mail dir")
        .map(|e| e.expect("entry").path())
        .collect();
    messages.sort();
    messages
        .iter()
        .map(|m| fs::read_to_string(m).expect("read"))
        .collect()
}

pub fn smtp_server(dir: &std::path::Path, python: String) -> SmtpServer {
    let tls = dir.join("tls");
    fs::create_dir(&tls).expect("mkdir");
    let cert = tls.join("cert.pem");
    let key = tls.join("key.pem");
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .args([
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert_success(&out, "openssl");
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mail = dir.join("mail");
    let mut server = std::process::Command::new(python)
        .arg(project_root().join("tests/scripts/smtp-server.py"))
        .arg(port.to_string())
        .arg(&cert)
        .arg(&key)
        .args(["firesafe", "s3cret-smtp-pass"])
        .arg(&mail)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("smtp server");
    let mut ready = String::new();
    BufReader::new(server.stdout.take().expect("stdout"))
        .read_line(&mut ready)
        .expect("read");
    assert_eq!(ready.trim(), "ready");
    SmtpServer {
        port,
        cert,
        mail,
        child: server,
    }
}

/// Adds an `[alerts]` table to the example's schedule: email to the test SMTP server on `port`
/// as user `firesafe`, trusting `ca` when given.
fn alert_by_email(dir: &std::path::Path, port: u16, ca: Option<&std::path::Path>) {
    let sched = dir.join("schedules/nightly.toml");
    let mut text = fs::read_to_string(&sched).expect("read");
    text.push_str(&format!(
        "\n[alerts]\nemail_to = [\"it-support@school.example\"]\nemail_from = \"firesafe@school.example\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {port}\nsmtp_user = \"firesafe\"\n"
    ));
    if let Some(ca) = ca {
        text.push_str(&format!("smtp_ca_file = \"{}\"\n", ca.display()));
    }
    fs::write(&sched, text).expect("write");
}

/// `firesafe run ARGS` in the example, with the SMTP password.
fn run_alerting(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    firesafe()
        .arg("run")
        .args(args)
        .arg("--config-dir")
        .arg(dir)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .env("FIRESAFE_SMTP_PASSWORD", "s3cret-smtp-pass")
        .output()
        .expect("run")
}

#[test]
fn an_alert_email_arrives_over_starttls_with_authentication() {
    let Some(python) = smtp_python() else {
        eprintln!("skipped: aiosmtpd is not installed (tests/run.sh installs it)");
        return;
    };
    let dir = example();
    let SmtpServer {
        port,
        cert,
        mail,
        child: mut server,
    } = smtp_server(dir.path(), python);

    alert_by_email(dir.path(), port, Some(&cert));
    let run = |args: &[&str]| run_alerting(dir.path(), args);
    // A clean run sends nothing.
    assert_success(&run(&["nightly", "--init"]), "first run");
    assert_eq!(
        fs::read_dir(&mail).map(|d| d.count()).unwrap_or(0),
        0,
        "an email for a clean run"
    );

    // The offsite copy is missing: the technician hears about it.
    fs::rename(dir.path().join("demo/offsite"), dir.path().join("away")).expect("move");
    let out = run(&["nightly"]);
    assert_exit(&out, 1, "degraded run");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let messages = stop_and_read(&mut server, &mail);
    assert_eq!(messages.len(), 1, "expected one email; stderr: {stderr}");
    let email = &messages[0];
    assert!(
        email.contains("Subject: firesafe on")
            && email.contains("schedule nightly DEGRADED, 3-2-1 VIOLATED"),
        "{email}"
    );
    assert!(email.contains("To: it-support@school.example"), "{email}");
    // The body (quoted-printable, lines joined): what happened and what to do first, then each
    // problem once with the shares it affects, not once per share.
    let body = email.replace("=\r\n", "").replace("=\n", "");
    let first = body
        .lines()
        .find(|l| l.starts_with("The nightly run on "))
        .unwrap_or_else(|| panic!("no first line: {body}"));
    assert!(
        first.contains("ended DEGRADED: offsite: repository directory")
            && first.contains("(all 3 shares)")
            && first.ends_with(
                "What to do: check the path, and that the disk or share holding it is mounted."
            ),
        "{first}"
    );
    assert_eq!(body.matches("does not exist").count(), 2, "{body}");
    assert_eq!(
        body.matches("holds no complete snapshot").count(),
        1,
        "{body}"
    );
    assert!(
        !email.contains("s3cret-smtp-pass") && !stderr.contains("s3cret-smtp-pass"),
        "the password leaked"
    );
}

/// An SMTP server whose certificate the machine does not trust (no smtp_ca_file): the run says
/// in words what to set, on standard error and in the run's history.
#[test]
fn an_untrusted_smtp_certificate_is_explained_and_recorded() {
    let Some(python) = smtp_python() else {
        eprintln!("skipped: aiosmtpd is not installed (tests/run.sh installs it)");
        return;
    };
    let dir = example();
    let SmtpServer {
        port,
        child: mut server,
        ..
    } = smtp_server(dir.path(), python);
    alert_by_email(dir.path(), port, None);
    let run = |args: &[&str]| run_alerting(dir.path(), args);
    assert_success(&run(&["nightly", "--init"]), "first run");
    fs::rename(dir.path().join("demo/offsite"), dir.path().join("away")).expect("move");
    let out = run(&["nightly"]);
    let _ = server.kill();
    let _ = server.wait();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        stderr.contains("certificate is not trusted; set smtp_ca_file"),
        "{stderr}"
    );
    let history = fs::read_to_string(dir.path().join("state/history.jsonl")).expect("history");
    let last = history.lines().last().expect("a line");
    assert!(last.contains("set smtp_ca_file"), "{last}");
}

/// Ransomware seen by the nightly run: the run ends degraded and one email goes out at once,
/// its subject the attack in words, over the real SMTP server.
#[test]
fn an_attack_seen_by_the_run_sends_the_ransomware_alert() {
    let Some(python) = smtp_python() else {
        eprintln!("skipped: aiosmtpd is not installed (tests/run.sh installs it)");
        return;
    };
    let dir = example();
    let SmtpServer {
        port,
        cert,
        mail,
        child: mut server,
    } = smtp_server(dir.path(), python);
    alert_by_email(dir.path(), port, Some(&cert));
    let share = dir.path().join("demo/shares/admin");
    let generate = std::process::Command::new("python3")
        .arg(project_root().join("tests/scripts/school-share.py"))
        .args(["generate"])
        .arg(share.join("school"))
        .args(["--files", "600"])
        .output()
        .expect("school-share.py");
    assert_success(&generate, "generate");
    let run = |args: &[&str]| run_alerting(dir.path(), args);
    assert_success(&run(&["nightly", "--init"]), "first run");
    assert_success(&run(&["nightly"]), "a quiet night");
    let attack = std::process::Command::new("python3")
        .arg(project_root().join("tests/scripts/school-share.py"))
        .args(["attack"])
        .arg(share.join("school"))
        .args(["b", "--fraction", "0.2"])
        .output()
        .expect("attack");
    assert_success(&attack, "attack");
    let out = run(&["nightly"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_exit(&out, 1, "the run that sees the attack");
    assert!(stderr.contains("admin: POSSIBLE RANSOMWARE"), "{stderr}");
    let messages = stop_and_read(&mut server, &mail);
    assert_eq!(messages.len(), 1, "one email; stderr: {stderr}");
    let email = &messages[0];
    assert!(
        email.contains("Subject: Possible ransomware on the admin share:"),
        "{email}"
    );
}
