use std::path::{Path, PathBuf};
use std::time::Duration;

use super::load::resolve_data_dir;
use super::*;

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load_err(file: Option<&Path>, vars: &[(&str, &str)], overrides: &Overrides) -> String {
    Config::load(file, env(vars), overrides)
        .unwrap_err()
        .to_string()
}

#[test]
fn the_documented_default_file_is_the_default() {
    let parsed: Config = toml::from_str(DEFAULT_TOML).unwrap();
    assert_eq!(parsed, Config::default());
    // Every key the struct has is documented in the file.
    let rendered = toml::to_string(&Config::default()).unwrap();
    let table: toml::Table = rendered.parse().unwrap();
    let mut keys = Vec::new();
    fn walk(t: &toml::Table, prefix: &str, out: &mut Vec<String>) {
        for (k, v) in t {
            match v {
                toml::Value::Table(inner) => walk(inner, k, out),
                _ => out.push(if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                }),
            }
        }
    }
    walk(&table, "", &mut keys);
    for key in keys {
        let leaf = key.rsplit('.').next().unwrap();
        assert!(
            DEFAULT_TOML.contains(&format!("\n{leaf} = ")),
            "key {key} is not in default.toml"
        );
    }
}

#[test]
fn precedence_is_file_then_env_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "c.toml",
        "[federation]\nlabel = \"from-file\"\nlisten = \"127.0.0.1:7001\"\n[admin]\nlisten = \"127.0.0.1:7002\"\n",
    );
    let mut flags = Overrides::default();
    flags.set("admin.listen", "127.0.0.1:9002");
    let config = Config::load(
        Some(&file),
        env(&[
            ("FEDSYNC_FEDERATION__LABEL", "123"),
            ("FEDSYNC_ADMIN__LISTEN", "127.0.0.1:8002"),
            ("FEDSYNC_ADMIN_TOKEN", "not a config key"),
            ("FEDSYNC_TEST_DATABASE_URL", "postgres://x"),
            ("HOME", "/root"),
        ]),
        &flags,
    )
    .unwrap();
    assert_eq!(
        config.federation.label, "123",
        "env beats file, and stays a string"
    );
    assert_eq!(
        config.federation.listen.to_string(),
        "127.0.0.1:7001",
        "file beats default"
    );
    assert_eq!(
        config.admin.listen.to_string(),
        "127.0.0.1:9002",
        "flag beats env"
    );
}

#[test]
fn env_values_reach_typed_keys() {
    let config = Config::load(
        None,
        env(&[
            ("FEDSYNC_FEDERATION__ALLOW_INSECURE_PEERS", "true"),
            ("FEDSYNC_DATABASE__MAX_CONNECTIONS", "3"),
            ("FEDSYNC_DAEMON__SHUTDOWN_GRACE", "2s"),
            ("FEDSYNC_LOCAL__KIND", "embedded"),
            ("FEDSYNC_DATA_DIR", "/var/lib/x"),
        ]),
        &Overrides::default(),
    )
    .unwrap();
    assert!(config.federation.allow_insecure_peers);
    assert_eq!(config.database.max_connections, 3);
    assert_eq!(config.daemon.shutdown_grace, Duration::from_secs(2));
    assert_eq!(config.data_dir(), PathBuf::from("/var/lib/x"));
}

#[test]
fn unknown_keys_are_named_with_their_source() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "c.toml",
        "[federation]\nlisten = \"0.0.0.0:1\"\nlistn = \"x\"\n",
    );
    let err = load_err(Some(&file), &[], &Overrides::default());
    assert!(err.contains("`federation.listn`"), "{err}");
    assert!(err.contains("unknown field"), "{err}");
    assert!(err.contains("c.toml"), "{err}");

    let err = load_err(
        None,
        &[("FEDSYNC_DATABSE__URL", "x")],
        &Overrides::default(),
    );
    assert!(err.contains("`databse`"), "{err}");
    assert!(err.contains("FEDSYNC_DATABSE__URL"), "{err}");
}

#[test]
fn other_fedsync_variables_pass_with_one_warning_each() {
    let config = Config::load(
        None,
        env(&[
            ("FEDSYNC_VERSION", "1.4.2"),
            ("FEDSYNC_IMAGE", "registry.example/fedsync:1.4.2"),
            // Sections match as whole words: this is not `log`.
            ("FEDSYNC_LOGGER", "x"),
            ("FEDSYNC_FEDERATION__LABEL", "still applied"),
        ]),
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(config.federation.label, "still applied");
    assert_eq!(config.warnings.len(), 3, "{:?}", config.warnings);
    for name in ["FEDSYNC_IMAGE", "FEDSYNC_LOGGER", "FEDSYNC_VERSION"] {
        let named: Vec<_> = config
            .warnings
            .iter()
            .filter(|w| w.contains(&format!("`{name}`")))
            .collect();
        assert_eq!(named.len(), 1, "{name}: {:?}", config.warnings);
        assert!(named[0].contains("not a config key"), "{}", named[0]);
    }
    // Warnings are no key: never printed as config.
    assert!(!config.to_redacted_toml().contains("FEDSYNC_"));
}

#[test]
fn test_and_cli_variables_pass_silently() {
    let config = Config::load(
        None,
        env(&[
            ("FEDSYNC_TEST_ANYTHING", "x"),
            ("FEDSYNC_TEST_DATABASE_URL", "postgres://x"),
            ("FEDSYNC_ADMIN_TOKEN", "jwt"),
            ("FEDSYNC_ADMIN_ADDR", "127.0.0.1:1"),
            ("FEDSYNC_CONFIG", "/etc/fedsync.toml"),
            ("HOME", "/root"),
        ]),
        &Overrides::default(),
    )
    .unwrap();
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    assert_eq!(config, Config::default());
}

#[test]
fn variables_that_look_like_config_keys_are_refused() {
    let refused = |name: &str| load_err(None, &[(name, "x")], &Overrides::default());

    // A single underscore where the section ends: the right name is offered.
    let err = refused("FEDSYNC_DATABASE_URL");
    assert!(err.contains("`FEDSYNC_DATABASE_URL`"), "{err}");
    assert!(err.contains("`FEDSYNC_DATABASE__URL`"), "{err}");
    let err = refused("FEDSYNC_LOCAL_KIND");
    assert!(err.contains("`FEDSYNC_LOCAL_KIND`"), "{err}");
    assert!(err.contains("`FEDSYNC_LOCAL__KIND`"), "{err}");
    let err = refused("FEDSYNC_NOTIFY_SMTP_HOST");
    assert!(err.contains("`FEDSYNC_NOTIFY__SMTP__HOST`"), "{err}");
    // Keys `Serialize` leaves out when unset are known too.
    let err = refused("FEDSYNC_KEYS_SIGNING_KEY_FILE");
    assert!(err.contains("`FEDSYNC_KEYS__SIGNING_KEY_FILE`"), "{err}");

    // No such key in the section: the section is named.
    let err = refused("FEDSYNC_DATABASE_URLL");
    assert!(err.contains("`FEDSYNC_DATABASE_URLL`"), "{err}");
    assert!(err.contains("section `database`"), "{err}");
    assert!(!err.contains("did you mean"), "{err}");

    // A top-level key that is not a section matches as a prefix.
    let err = refused("FEDSYNC_DATA_DIRR");
    assert!(err.contains("`FEDSYNC_DATA_DIRR`"), "{err}");
    assert!(err.contains("`data_dir`"), "{err}");

    // An unknown key of a known section is refused by the config, as in a file.
    let err = refused("FEDSYNC_SYNC__DATA_EVRY");
    assert!(err.contains("`sync.data_evry`"), "{err}");
    assert!(err.contains("unknown field"), "{err}");
    assert!(err.contains("FEDSYNC_SYNC__DATA_EVRY"), "{err}");

    // A section given a value rather than keys.
    let err = refused("FEDSYNC_LOG");
    assert!(err.contains("FEDSYNC_LOG"), "{err}");
}

#[test]
fn the_env_key_schema_comes_from_the_config_struct() {
    let schema = environment::Schema::of::<Config>();
    let leaves = schema.leaves();
    let rendered = toml::to_string(&Config::default()).unwrap();
    let table: toml::Table = rendered.parse().unwrap();
    let mut serialized = Vec::new();
    fn walk(t: &toml::Table, prefix: &str, out: &mut Vec<String>) {
        for (k, v) in t {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(inner) => walk(inner, &path, out),
                _ => out.push(path),
            }
        }
    }
    walk(&table, "", &mut serialized);
    for key in &serialized {
        assert!(leaves.contains(key), "{key} missing from {leaves:?}");
    }
    // What serialization leaves out is the unset `*_file` paths and the
    // optional cap on requests to Corteza.
    for key in leaves {
        assert!(
            serialized.contains(key)
                || key.ends_with("_file")
                || key == "local.corteza_requests_per_second",
            "{key} is not a config key"
        );
    }
    assert!(leaves.contains(&"database.url_file".to_owned()));
    assert!(leaves.contains(&"notify.smtp.password_file".to_owned()));
}

#[test]
fn bad_values_are_named() {
    let mut flags = Overrides::default();
    flags.set("database.url", "mysql://x");
    let err = load_err(None, &[], &flags);
    assert!(
        err.contains("`database.url`") && err.contains("--database-url"),
        "{err}"
    );

    let err = load_err(
        None,
        &[("FEDSYNC_FEDERATION__LISTEN", "nowhere")],
        &Overrides::default(),
    );
    assert!(err.contains("`federation.listen`"), "{err}");

    let mut flags = Overrides::default();
    flags.set("federation.public_url", "http://a.example.com/federation");
    let err = load_err(None, &[], &flags);
    assert!(
        err.contains("`federation.public_url`") && err.contains("https"),
        "{err}"
    );

    let err = load_err(
        None,
        &[("FEDSYNC_DAEMON__SHUTDOWN_GRACE", "soon")],
        &Overrides::default(),
    );
    assert!(
        err.contains("`daemon.shutdown_grace`") && err.contains("soon"),
        "{err}"
    );

    let err = load_err(
        None,
        &[("FEDSYNC_LOCAL__KIND", "mongo")],
        &Overrides::default(),
    );
    assert!(err.contains("`local.kind`"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, "broken.toml", "[federation\nlisten = 1\n");
    let err = load_err(Some(&file), &[], &Overrides::default());
    assert!(
        err.contains("broken.toml") && err.contains("line 1"),
        "{err}"
    );
}

#[test]
fn unreadable_files_are_named() {
    let err = load_err(
        Some(Path::new("/nonexistent/fedsync.toml")),
        &[],
        &Overrides::default(),
    );
    assert!(err.contains("/nonexistent/fedsync.toml"), "{err}");

    let err = load_err(
        None,
        &[("FEDSYNC_KEYS__SIGNING_KEY_FILE", "/nonexistent/signing.key")],
        &Overrides::default(),
    );
    assert!(err.contains("`keys.signing_key_file`"), "{err}");
    assert!(err.contains("/nonexistent/signing.key"), "{err}");
}

#[test]
fn secrets_come_from_files_and_never_print() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = write(
        &dir,
        "k",
        "c2VjcmV0LXNpZ25pbmcta2V5LWNhbmFyeS0xMjM0NTY3OA\n",
    );
    let config = Config::load(
        None,
        env(&[
            ("FEDSYNC_KEYS__SIGNING_KEY_FILE", key_file.to_str().unwrap()),
            (
                "FEDSYNC_DATABASE__URL",
                "postgres://u:CANARYPASS@127.0.0.1/db",
            ),
        ]),
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(
        config.keys.signing_key.expose(),
        "c2VjcmV0LXNpZ25pbmcta2V5LWNhbmFyeS0xMjM0NTY3OA"
    );
    let shown = format!("{config:?}\n{}", config.to_redacted_toml());
    assert!(!shown.contains("CANARYPASS"), "{shown}");
    assert!(!shown.contains("c2VjcmV0"), "{shown}");

    let err = load_err(
        None,
        &[
            ("FEDSYNC_KEYS__SIGNING_KEY_FILE", key_file.to_str().unwrap()),
            ("FEDSYNC_KEYS__SIGNING_KEY", "inline"),
        ],
        &Overrides::default(),
    );
    assert!(err.contains("set only one"), "{err}");
}

#[test]
fn data_dir_follows_systemd_state_directory() {
    assert_eq!(
        resolve_data_dir(Path::new(""), None),
        PathBuf::from("./fedsync-data")
    );
    assert_eq!(
        resolve_data_dir(Path::new(""), Some("/var/lib/fedsync:/var/lib/other")),
        PathBuf::from("/var/lib/fedsync")
    );
    assert_eq!(
        resolve_data_dir(Path::new("/srv/x"), Some("/var/lib/fedsync")),
        PathBuf::from("/srv/x")
    );
}

#[test]
fn the_default_database_is_sqlite_in_the_data_dir() {
    let mut flags = Overrides::default();
    flags.set("data_dir", "/tmp/fs-data");
    let config = Config::load(None, env(&[]), &flags).unwrap();
    assert_eq!(
        config.database_url().expose(),
        "sqlite:///tmp/fs-data/fedsync.db"
    );
}

#[test]
fn systemd_credentials_fill_the_secrets_config_leaves_unset() {
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().to_str().unwrap().to_owned();
    let key = "k".repeat(44);
    std::fs::write(dir.path().join("signing.key"), &key).unwrap();
    std::fs::write(
        dir.path().join("database-url"),
        "postgres://fedsync@db.internal/fedsync\n",
    )
    .unwrap();
    let config = Config::load(
        None,
        env(&[("CREDENTIALS_DIRECTORY", &credentials)]),
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(config.keys.signing_key.expose(), key);
    assert!(config.keys.encryption_key.is_empty(), "no such credential");
    assert_eq!(
        config.database.url.expose(),
        "postgres://fedsync@db.internal/fedsync"
    );
    // What config sets wins over a credential.
    let config = Config::load(
        None,
        env(&[
            ("CREDENTIALS_DIRECTORY", &credentials),
            ("FEDSYNC_DATABASE__URL", "sqlite:///var/lib/fedsync/x.db"),
        ]),
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(
        config.database.url.expose(),
        "sqlite:///var/lib/fedsync/x.db"
    );
}

#[test]
fn notification_settings_are_checked_naming_the_key() {
    /// Keys set, the key the error names, words it says.
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: &[Case] = &[
        (
            &[
                ("notify.smtp.host", "127.0.0.1"),
                ("notify.admin_emails", "alice@a.test, not an address"),
            ],
            "`notify.admin_emails`",
            "not an address",
        ),
        (
            &[("notify.admin_emails", "alice@a.test")],
            "`notify.admin_emails`",
            "notify.smtp.host",
        ),
        (
            &[
                ("notify.webhook_urls", "https://hooks.example.com/k"),
                ("notify.webhook_secret", "short"),
            ],
            "`notify.webhook_secret`",
            "16 characters",
        ),
        (
            &[
                ("notify.smtp.host", "smtp.example.com"),
                ("notify.smtp.security", "none"),
            ],
            "`notify.smtp.security`",
            "loopback",
        ),
        (
            &[
                ("notify.smtp.host", "smtp.example.com"),
                ("notify.smtp.username", "fedsync"),
            ],
            "`notify.smtp.username`",
            "go together",
        ),
        (
            &[
                ("notify.smtp.host", "smtp.example.com"),
                ("notify.smtp.from", "not a mailbox"),
            ],
            "`notify.smtp.from`",
            "not a mailbox",
        ),
        (
            &[("notify.retry_base", "0s")],
            "`notify.retry_cap`",
            "above zero",
        ),
    ];
    for (pairs, key, words) in cases {
        let mut flags = Overrides::default();
        for (k, v) in *pairs {
            flags.set(k, *v);
        }
        let err = load_err(None, &[], &flags);
        assert!(err.contains(key) && err.contains(words), "{pairs:?}: {err}");
    }
    // The working combination loads; the webhook URL and secret stay secret.
    let mut flags = Overrides::default();
    flags
        .set("notify.smtp.host", "localhost")
        .set("notify.smtp.security", "none")
        .set("notify.admin_emails", "alice@a.test")
        .set(
            "notify.webhook_urls",
            "https://hooks.example.com/T0/SECRETKEY",
        )
        .set("notify.webhook_secret", "0123456789abcdef");
    let config = Config::load(None, Vec::new(), &flags).unwrap();
    assert_eq!(config.notify.admin_emails(), ["alice@a.test"]);
    let shown = format!("{config:?}");
    assert!(!shown.contains("SECRETKEY") && !shown.contains("0123456789abcdef"));
}

#[test]
fn sidecar_settings_are_checked_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let token = write(&dir, "corteza-token", "eyJ.token.sig\n");
    let token = token.to_str().unwrap();
    let base = [
        ("FEDSYNC_LOCAL__KIND", "corteza"),
        ("FEDSYNC_LOCAL__CORTEZA_URL", "http://127.0.0.1:80/api"),
        ("FEDSYNC_LOCAL__CORTEZA_TOKEN_FILE", token),
        ("FEDSYNC_LOCAL__CORTEZA_NAMESPACE", "crm"),
    ];
    let config = Config::load(None, env(&base), &Overrides::default()).unwrap();
    assert_eq!(config.local.kind, LocalKind::Corteza);
    // The token file stays a path (re-read on change), never printed.
    assert_eq!(
        config.local.corteza_token_file.as_deref(),
        Some(Path::new(token))
    );
    assert!(config.local.corteza_token.is_empty());
    assert!(!config.to_redacted_toml().contains("eyJ.token.sig"));
    // Flags name the same keys.
    let mut flags = Overrides::default();
    flags.set("local.corteza_url", "ftp://corteza");
    let error = load_err(None, &base, &flags);
    assert!(
        error.contains("local.corteza_url") && error.contains("--corteza-url"),
        "{error}"
    );

    let without = |key: &str| -> Vec<(&str, &str)> {
        base.iter().copied().filter(|(k, _)| *k != key).collect()
    };
    let error = load_err(
        None,
        &without("FEDSYNC_LOCAL__CORTEZA_URL"),
        &Overrides::default(),
    );
    assert!(
        error.contains("local.corteza_url") && error.contains("must be set"),
        "{error}"
    );
    let error = load_err(
        None,
        &without("FEDSYNC_LOCAL__CORTEZA_TOKEN_FILE"),
        &Overrides::default(),
    );
    assert!(
        error.contains("local.corteza_token") && error.contains("token is needed"),
        "{error}"
    );
    let error = load_err(
        None,
        &without("FEDSYNC_LOCAL__CORTEZA_NAMESPACE"),
        &Overrides::default(),
    );
    assert!(error.contains("local.corteza_namespace"), "{error}");
    let mut both = base.to_vec();
    both.push(("FEDSYNC_LOCAL__CORTEZA_TOKEN", "inline"));
    let error = load_err(None, &both, &Overrides::default());
    assert!(error.contains("set only one"), "{error}");
    let mut missing = without("FEDSYNC_LOCAL__CORTEZA_TOKEN_FILE");
    missing.push((
        "FEDSYNC_LOCAL__CORTEZA_TOKEN_FILE",
        "/nonexistent/corteza-token",
    ));
    let error = load_err(None, &missing, &Overrides::default());
    assert!(error.contains("/nonexistent/corteza-token"), "{error}");
    let mut userinfo = without("FEDSYNC_LOCAL__CORTEZA_URL");
    userinfo.push((
        "FEDSYNC_LOCAL__CORTEZA_URL",
        "http://admin:pw@127.0.0.1/api",
    ));
    let error = load_err(None, &userinfo, &Overrides::default());
    assert!(
        error.contains("no user") && !error.contains("pw@"),
        "{error}"
    );
    let mut rate = base.to_vec();
    rate.push(("FEDSYNC_LOCAL__CORTEZA_PAGE_SIZE", "5000"));
    let error = load_err(None, &rate, &Overrides::default());
    assert!(error.contains("local.corteza_page_size"), "{error}");
    // Embedded ignores the corteza keys (they may sit in a shared file).
    let config = Config::load(
        None,
        env(&[("FEDSYNC_LOCAL__CORTEZA_URL", "not checked")]),
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(config.local.kind, LocalKind::Embedded);

    // A systemd credential `corteza-token` is the token file when unset.
    let credentials = tempfile::tempdir().unwrap();
    std::fs::write(credentials.path().join("corteza-token"), "tok\n").unwrap();
    let mut vars = without("FEDSYNC_LOCAL__CORTEZA_TOKEN_FILE");
    let dir_text = credentials.path().to_str().unwrap().to_owned();
    vars.push(("CREDENTIALS_DIRECTORY", &dir_text));
    let config = Config::load(None, env(&vars), &Overrides::default()).unwrap();
    assert_eq!(
        config.local.corteza_token_file,
        Some(credentials.path().join("corteza-token"))
    );
}
