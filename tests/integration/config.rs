//! Bad configuration is refused at start with the key and the problem, and
//! the documented defaults are what the binary prints and accepts.

use crate::common::{run_cli, stderr, stdout};

async fn serve_fails_with(args: &[&str], expected: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path().display().to_string();
    let mut all = vec![
        "serve",
        "--data-dir",
        &dir,
        "--federation-listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ];
    all.extend_from_slice(args);
    let out = run_cli(&all).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{args:?} must fail: {}",
        stderr(&out)
    );
    let err = stderr(&out);
    for needle in expected {
        assert!(err.contains(needle), "{args:?}: {err:?} lacks {needle:?}");
    }
}

#[tokio::test]
async fn serve_refuses_bad_config_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let unknown = dir.path().join("unknown.toml");
    std::fs::write(
        &unknown,
        "[federation]\nlisten = \"127.0.0.1:0\"\npublic_ur = \"x\"\n",
    )
    .unwrap();
    serve_fails_with(
        &["--config", unknown.to_str().unwrap()],
        &["`federation.public_ur`", "unknown field", "unknown.toml"],
    )
    .await;
    serve_fails_with(
        &["--database-url", "mysql://db"],
        &["`database.url`", "--database-url"],
    )
    .await;
    serve_fails_with(
        &["--database-url", "postgres://["],
        &["`database.url`", "not a valid URL"],
    )
    .await;
    serve_fails_with(
        &["--public-url", "ftp://x/federation"],
        &["`federation.public_url`", "ftp"],
    )
    .await;
    serve_fails_with(
        &["--config", "/nonexistent/fedsync.toml"],
        &["/nonexistent/fedsync.toml"],
    )
    .await;
    let secret_file = dir.path().join("keyfile.toml");
    std::fs::write(
        &secret_file,
        "[keys]\nsigning_key_file = \"/nonexistent/signing.key\"\n",
    )
    .unwrap();
    serve_fails_with(
        &["--config", secret_file.to_str().unwrap()],
        &["`keys.signing_key_file`", "/nonexistent/signing.key"],
    )
    .await;
    let bad_key = dir.path().join("badkey.toml");
    std::fs::write(&bad_key, "[keys]\nsigning_key = \"tooshort\"\n").unwrap();
    serve_fails_with(
        &["--config", bad_key.to_str().unwrap()],
        &["keys.signing_key", "bytes"],
    )
    .await;
}

#[tokio::test]
async fn print_default_is_a_config_that_checks() {
    let printed = run_cli(&["config", "print-default"]).await;
    assert!(printed.status.success());
    assert_eq!(stdout(&printed), fedsync::config::DEFAULT_TOML);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fedsync.toml");
    std::fs::write(&file, stdout(&printed)).unwrap();
    let checked = run_cli(&["config", "check", file.to_str().unwrap()]).await;
    assert!(checked.status.success(), "{}", stderr(&checked));
    assert!(
        stdout(&checked).starts_with("config OK"),
        "{}",
        stdout(&checked)
    );

    std::fs::write(&file, "[admin]\nlisten = \"nowhere\"\n").unwrap();
    let bad = run_cli(&["config", "check", file.to_str().unwrap()]).await;
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("`admin.listen`"), "{}", stderr(&bad));
}

#[tokio::test]
async fn config_check_never_prints_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fedsync.toml");
    std::fs::write(
        &file,
        "[database]\nurl = \"postgres://fedsync:CANARY-PASSWORD@127.0.0.1/fedsync\"\n",
    )
    .unwrap();
    let out = run_cli(&["config", "check", file.to_str().unwrap()]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("<redacted>"), "{}", stdout(&out));
    assert!(!stdout(&out).contains("CANARY"), "{}", stdout(&out));
    assert!(!stderr(&out).contains("CANARY"), "{}", stderr(&out));
}

#[test]
fn the_readme_configuration_reference_is_the_default_file() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("```toml\n# fedsync")
        .or_else(|| readme.find("### Reference"))
        .expect("the README has a configuration reference");
    let block = &readme[start..];
    let block = &block[block.find("```toml\n").unwrap() + "```toml\n".len()..];
    let block = &block[..block.find("```").unwrap()];
    assert_eq!(
        block,
        fedsync::config::DEFAULT_TOML,
        "the README's configuration reference drifted from `fedsync config print-default`: copy it over"
    );
}
