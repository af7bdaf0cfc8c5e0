//! The files under `deploy/`, checked without kubectl or a container engine:
//! every Kubernetes manifest parses and names its objects, the probes, the
//! Service and the federation listener of the embedded `fedsync.toml` agree
//! on one port, every volume and Secret reference resolves, no secret value
//! is written into a manifest, the embedded configuration is accepted by
//! fedsync's own loader, and the Containerfile builds the release binary and
//! runs it as a non-root user.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use fedsync::config::{Config, ConfigError, Overrides};
use serde::Deserialize;
use serde_norway::Value;

const SIDECAR: &str = "sidecar.yaml";
const STANDALONE: &str = "standalone.yaml";
const CORTEZA_IMAGE: &str = "docker.io/cortezaproject/corteza:2023.9";

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

/// Every `deploy/kubernetes/*.yaml`, by file name, as its documents (empty
/// documents left out).
fn manifests() -> BTreeMap<String, Vec<Value>> {
    let dir = deploy_dir().join("kubernetes");
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if !matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            continue;
        }
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let docs: Vec<Value> = serde_norway::Deserializer::from_str(&text)
            .map(|doc| {
                Value::deserialize(doc).unwrap_or_else(|e| panic!("{name} is not valid YAML: {e}"))
            })
            .filter(|doc| !doc.is_null())
            .collect();
        files.insert(name, docs);
    }
    for expected in [SIDECAR, STANDALONE] {
        assert!(
            files.contains_key(expected),
            "deploy/kubernetes/{expected} is missing"
        );
    }
    files
}

/// The value at a dotted path of mapping keys.
fn at<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, key| v.get(key))
}

fn str_at<'a>(value: &'a Value, path: &str) -> Option<&'a str> {
    at(value, path).and_then(Value::as_str)
}

fn seq_at<'a>(value: &'a Value, path: &str) -> &'a [Value] {
    at(value, path)
        .and_then(Value::as_sequence)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn kind(doc: &Value) -> &str {
    str_at(doc, "kind").unwrap_or("")
}

fn name(doc: &Value) -> &str {
    str_at(doc, "metadata.name").unwrap_or("")
}

fn find<'a>(docs: &'a [Value], kind_: &str, name_: &str) -> Option<&'a Value> {
    docs.iter().find(|d| kind(d) == kind_ && name(d) == name_)
}

/// A pod template of a workload, or a bare Pod.
struct PodTemplate<'a> {
    workload: String,
    labels: BTreeMap<String, String>,
    spec: &'a Value,
}

fn pod_templates(docs: &[Value]) -> Vec<PodTemplate<'_>> {
    let mut pods = Vec::new();
    for doc in docs {
        let (meta, spec) = match kind(doc) {
            "Deployment" | "StatefulSet" | "DaemonSet" | "Job" | "ReplicaSet" => (
                at(doc, "spec.template.metadata"),
                at(doc, "spec.template.spec"),
            ),
            "Pod" => (at(doc, "metadata"), at(doc, "spec")),
            _ => continue,
        };
        let spec = spec.unwrap_or_else(|| panic!("{} {} has no pod spec", kind(doc), name(doc)));
        let labels = meta
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_mapping)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().unwrap().to_owned(),
                            v.as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        pods.push(PodTemplate {
            workload: format!("{} {}", kind(doc), name(doc)),
            labels,
            spec,
        });
    }
    pods
}

/// Init containers and containers of a pod spec, with the list each is in.
fn all_containers(spec: &Value) -> Vec<(&'static str, &Value)> {
    let mut out = Vec::new();
    for list in ["initContainers", "containers"] {
        for c in seq_at(spec, list) {
            out.push((list, c));
        }
    }
    out
}

/// The pod running fedsync in a file, and its fedsync container with the
/// list it is in.
fn fedsync_pod(docs: &[Value]) -> (PodTemplate<'_>, &'static str, &Value) {
    let mut found = Vec::new();
    for pod in pod_templates(docs) {
        let spec = pod.spec;
        for (list, c) in all_containers(spec) {
            if str_at(c, "name") == Some("fedsync") {
                found.push((list, c));
            }
        }
        if let Some(&(list, c)) = found.first() {
            assert_eq!(found.len(), 1, "{}: one fedsync container", pod.workload);
            return (pod, list, c);
        }
    }
    panic!("no container named fedsync");
}

/// The containerPort a probe's or Service's port means: a name of one of the
/// container's ports, or a number one of them declares.
fn resolve_port(container: &Value, port: &Value) -> Option<u64> {
    let ports = seq_at(container, "ports");
    if let Some(name_) = port.as_str() {
        ports
            .iter()
            .find(|p| str_at(p, "name") == Some(name_))
            .and_then(|p| at(p, "containerPort"))
            .and_then(Value::as_u64)
    } else {
        let number = port.as_u64()?;
        ports
            .iter()
            .any(|p| at(p, "containerPort").and_then(Value::as_u64) == Some(number))
            .then_some(number)
    }
}

/// An httpGet probe's path and the containerPort it resolves to.
fn http_probe(container: &Value, probe: &str) -> Option<(String, u64)> {
    let get = at(container, &format!("{probe}.httpGet"))?;
    let path = str_at(get, "path")?.to_owned();
    let port = resolve_port(container, get.get("port")?).unwrap_or_else(|| {
        panic!(
            "{probe} port {:?} is not a declared containerPort",
            get.get("port")
        )
    });
    Some((path, port))
}

/// The text of the configuration file the fedsync container is started
/// with: its `--config` path, through the volume mounted over its
/// directory, in the ConfigMap of the same file.
fn fedsync_toml<'a>(docs: &'a [Value], pod: &PodTemplate<'_>, container: &Value) -> &'a str {
    let args: Vec<&str> = seq_at(container, "args")
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let config = args
        .windows(2)
        .find(|w| w[0] == "--config")
        .map(|w| Path::new(w[1]))
        .expect("fedsync is started with --config");
    let (dir, file) = (
        config.parent().unwrap().to_str().unwrap(),
        config.file_name().unwrap().to_str().unwrap(),
    );
    let mount = seq_at(container, "volumeMounts")
        .iter()
        .find(|m| str_at(m, "mountPath") == Some(dir))
        .unwrap_or_else(|| panic!("nothing is mounted at {dir}"));
    let volume = seq_at(pod.spec, "volumes")
        .iter()
        .find(|v| str_at(v, "name") == str_at(mount, "name"))
        .expect("the config mount names a volume");
    let map = str_at(volume, "configMap.name").expect("the config volume is a ConfigMap");
    let map = find(docs, "ConfigMap", map).unwrap_or_else(|| panic!("no ConfigMap {map}"));
    str_at(map, &format!("data.{file}"))
        .or_else(|| {
            map.get("data")
                .and_then(|d| d.get(file))
                .and_then(Value::as_str)
        })
        .unwrap_or_else(|| panic!("ConfigMap {} has no key {file}", name(map)))
}

/// Secret volumes mounted into a container: mount path -> Secret name.
fn secret_mounts(pod: &PodTemplate<'_>, container: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for m in seq_at(container, "volumeMounts") {
        let volume = seq_at(pod.spec, "volumes")
            .iter()
            .find(|v| str_at(v, "name") == str_at(m, "name"));
        if let Some(secret) = volume.and_then(|v| str_at(v, "secret.secretName")) {
            out.insert(
                str_at(m, "mountPath").unwrap().to_owned(),
                secret.to_owned(),
            );
        }
    }
    out
}

/// The Containerfile's instructions (upper-cased) and their arguments,
/// continuation lines joined, comments left out.
fn containerfile() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(deploy_dir().join("Containerfile")).unwrap();
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                let line = std::mem::take(&mut current);
                let (op, args) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
                instructions.push((op.to_ascii_uppercase(), args.trim().to_owned()));
            }
        }
    }
    instructions
}

/// The instructions of the last stage (from the last FROM on).
fn runtime_stage(instructions: &[(String, String)]) -> &[(String, String)] {
    let last_from = instructions
        .iter()
        .rposition(|(op, _)| op == "FROM")
        .expect("the Containerfile has a FROM");
    &instructions[last_from..]
}

/// The variables the image sets (`ENV` of its last stage).
fn image_env() -> Vec<(String, String)> {
    let mut env = Vec::new();
    for (op, args) in runtime_stage(&containerfile()) {
        if op != "ENV" {
            continue;
        }
        let first = args.split_whitespace().next().unwrap_or("");
        if first.contains('=') {
            for pair in args.split_whitespace() {
                let (k, v) = pair.split_once('=').unwrap();
                env.push((k.to_owned(), v.trim_matches('"').to_owned()));
            }
        } else {
            env.push((first.to_owned(), args[first.len()..].trim().to_owned()));
        }
    }
    env
}

/// The variables the container sets with literal values.
fn literal_env(container: &Value) -> Vec<(String, String)> {
    seq_at(container, "env")
        .iter()
        .filter_map(|e| {
            Some((
                str_at(e, "name")?.to_owned(),
                str_at(e, "value")?.to_owned(),
            ))
        })
        .collect()
}

/// Loads `text` with fedsync's loader, each file under a Secret mount
/// replaced by a stand-in file in `dir` (a secret value of the right shape).
fn load_with_stand_ins(
    text: &str,
    secret_mounts: &BTreeMap<String, String>,
    env: Vec<(String, String)>,
    dir: &Path,
) -> Result<Config, ConfigError> {
    let mut text = text.to_owned();
    for (i, mount) in secret_mounts.keys().enumerate() {
        let stand_in = dir.join(format!("secret-{i}"));
        std::fs::create_dir_all(&stand_in).unwrap();
        let prefix = format!("{}/", mount.trim_end_matches('/'));
        let table: toml::Table = text.parse().unwrap();
        for path in string_values(&toml::Value::Table(table)) {
            if let Some(file) = path.strip_prefix(&prefix) {
                let value = if file.contains("database") {
                    "postgres://fedsync@127.0.0.1:5432/fedsync"
                } else if file.contains("key") {
                    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
                } else {
                    "stand-in-secret"
                };
                std::fs::write(stand_in.join(file), value).unwrap();
            }
        }
        text = text.replace(&prefix, &format!("{}/", stand_in.display()));
    }
    let path = dir.join("fedsync.toml");
    std::fs::write(&path, &text).unwrap();
    Config::load(Some(&path), env, &Overrides::default())
}

fn toml_at<'a>(table: &'a toml::Table, key: &str) -> Option<&'a toml::Value> {
    let (first, rest) = key.split_once('.').unwrap_or((key, ""));
    let value = table.get(first)?;
    if rest.is_empty() {
        Some(value)
    } else {
        toml_at(value.as_table()?, rest)
    }
}

fn string_values(value: &toml::Value) -> Vec<String> {
    match value {
        toml::Value::String(s) => vec![s.clone()],
        toml::Value::Table(t) => t.values().flat_map(string_values).collect(),
        toml::Value::Array(a) => a.iter().flat_map(string_values).collect(),
        _ => Vec::new(),
    }
}

/// The effective configuration of the fedsync container in `file`.
fn fedsync_config(file: &str) -> (Config, toml::Table) {
    let files = manifests();
    let docs = &files[file];
    let (pod, _, container) = fedsync_pod(docs);
    let text = fedsync_toml(docs, &pod, container);
    let table: toml::Table = text
        .parse()
        .unwrap_or_else(|e| panic!("{file}: fedsync.toml is not TOML: {e}"));
    let mounts = secret_mounts(&pod, container);
    // The image's ENV, then the container's: what the process sees.
    let mut env = image_env();
    env.extend(literal_env(container));
    let dir = tempfile::tempdir().unwrap();
    let config = load_with_stand_ins(text, &mounts, env.clone(), dir.path())
        .unwrap_or_else(|e| panic!("{file}: fedsync.toml is refused: {e}"));
    (config, table)
}

#[test]
fn every_manifest_document_names_its_api_kind_and_object() {
    for (file, docs) in manifests() {
        assert!(!docs.is_empty(), "{file} has no documents");
        let mut seen = BTreeSet::new();
        for (i, doc) in docs.iter().enumerate() {
            assert!(doc.is_mapping(), "{file} document {i} is not a mapping");
            for key in ["apiVersion", "kind", "metadata.name"] {
                let value = str_at(doc, key).unwrap_or("");
                assert!(!value.trim().is_empty(), "{file} document {i} has no {key}");
            }
            assert!(
                seen.insert((kind(doc).to_owned(), name(doc).to_owned())),
                "{file}: {} {} twice",
                kind(doc),
                name(doc)
            );
        }
    }
}

#[test]
fn sidecar_runs_fedsync_as_a_native_sidecar_beside_corteza() {
    let files = manifests();
    let docs = &files[SIDECAR];
    let (pod, list, fedsync) = fedsync_pod(docs);
    assert_eq!(list, "initContainers", "fedsync is a native sidecar");
    assert_eq!(
        str_at(fedsync, "restartPolicy"),
        Some("Always"),
        "a native sidecar has restartPolicy: Always"
    );
    let args: Vec<&str> = seq_at(fedsync, "args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(args, ["serve", "--config", "/etc/fedsync/fedsync.toml"]);
    // The kubelet holds the main containers back until a sidecar's startup
    // probe passes: on /readyz (503 until Corteza answers) Corteza would
    // never start.
    if let Some((path, _)) = http_probe(fedsync, "startupProbe") {
        assert_ne!(
            path, "/readyz",
            "the sidecar's startup probe must not wait for Corteza"
        );
    }

    let containers = seq_at(pod.spec, "containers");
    let corteza = containers
        .iter()
        .find(|c| str_at(c, "image") == Some(CORTEZA_IMAGE))
        .expect("a Corteza container in containers");
    assert_eq!(
        resolve_port(corteza, &Value::from("http")),
        Some(80),
        "Corteza's port 80 is named http"
    );
    let dsn = seq_at(corteza, "env")
        .iter()
        .find(|e| str_at(e, "name") == Some("DB_DSN"))
        .expect("Corteza gets DB_DSN");
    assert!(
        str_at(dsn, "valueFrom.secretKeyRef.name").is_some(),
        "DB_DSN comes from a Secret"
    );
    let (path, _) = http_probe(corteza, "readinessProbe").expect("Corteza has a readiness probe");
    assert_eq!(path, "/healthcheck");

    // fedsync reaches Corteza's API on the pod's loopback, on the port the
    // Corteza container declares.
    let (_, table) = fedsync_config(SIDECAR);
    let local = table
        .get("local")
        .and_then(toml::Value::as_table)
        .expect("[local]");
    assert_eq!(
        local.get("kind").and_then(toml::Value::as_str),
        Some("corteza")
    );
    for key in ["corteza_token_file", "corteza_namespace"] {
        let value = local.get(key).and_then(toml::Value::as_str).unwrap_or("");
        assert!(!value.is_empty(), "[local] {key} is set");
    }
    let api = url::Url::parse(local["corteza_url"].as_str().unwrap()).unwrap();
    assert_eq!(
        api.host_str(),
        Some("127.0.0.1"),
        "Corteza is reached on loopback"
    );
    assert_eq!(api.port_or_known_default().map(u64::from), Some(80));
    assert_eq!(api.path(), "/api");
    let token = local["corteza_token_file"].as_str().unwrap();
    assert!(
        secret_mounts(&pod, fedsync)
            .keys()
            .any(|m| token.starts_with(&format!("{m}/"))),
        "the Corteza token file {token} lies in a Secret volume"
    );
    assert_eq!(
        fedsync_config(SIDECAR).0.local.kind,
        fedsync::config::LocalKind::Corteza
    );
}

/// The probes, the federation listener and the Service agree on one port.
fn check_probes_port_and_service(file: &str, expected_list: &str) {
    let files = manifests();
    let docs = &files[file];
    let (pod, list, fedsync) = fedsync_pod(docs);
    assert_eq!(list, expected_list, "{file}: fedsync's container list");
    let (live, live_port) = http_probe(fedsync, "livenessProbe")
        .unwrap_or_else(|| panic!("{file}: no httpGet livenessProbe"));
    let (ready, ready_port) = http_probe(fedsync, "readinessProbe")
        .unwrap_or_else(|| panic!("{file}: no httpGet readinessProbe"));
    assert_eq!(live, "/livez", "{file}");
    assert_eq!(ready, "/readyz", "{file}");
    assert_eq!(
        live_port, ready_port,
        "{file}: both probes on the federation port"
    );

    let (config, _) = fedsync_config(file);
    let listen = config.federation.listen;
    assert_eq!(
        u64::from(listen.port()),
        live_port,
        "{file}: the probes' port is federation.listen's"
    );
    assert!(
        listen.ip().is_unspecified(),
        "{file}: federation.listen {listen} must take the kubelet's probes and the Service's traffic"
    );
    assert!(
        config.admin.listen.ip().is_loopback(),
        "{file}: the admin listener stays on loopback"
    );

    let services: Vec<&Value> = docs.iter().filter(|d| kind(d) == "Service").collect();
    let service = services
        .iter()
        .find(|s| {
            let selector = at(s, "spec.selector").and_then(Value::as_mapping);
            selector.is_some_and(|sel| {
                !sel.is_empty()
                    && sel.iter().all(|(k, v)| {
                        pod.labels
                            .get(k.as_str().unwrap_or_default())
                            .map(String::as_str)
                            == v.as_str()
                    })
            })
        })
        .unwrap_or_else(|| panic!("{file}: no Service selects the pod labels {:?}", pod.labels));
    let federation = seq_at(service, "spec.ports")
        .iter()
        .find(|p| {
            let target = p.get("targetPort").or_else(|| p.get("port")).unwrap();
            resolve_port(fedsync, target) == Some(live_port)
        })
        .unwrap_or_else(|| {
            panic!(
                "{file}: Service {} does not target port {live_port}",
                name(service)
            )
        });
    assert_eq!(str_at(federation, "name"), Some("federation"), "{file}");
}

#[test]
fn sidecar_probes_listener_and_service_share_the_federation_port() {
    check_probes_port_and_service(SIDECAR, "initContainers");
}

#[test]
fn standalone_probes_listener_and_service_share_the_federation_port() {
    check_probes_port_and_service(STANDALONE, "containers");
}

#[test]
fn fedsync_runs_unprivileged_with_a_state_volume() {
    for file in [SIDECAR, STANDALONE] {
        let files = manifests();
        let (pod, _, fedsync) = fedsync_pod(&files[file]);
        // A container's securityContext overrides the pod's.
        let effective = |key: &str| {
            at(fedsync, &format!("securityContext.{key}"))
                .or_else(|| at(pod.spec, &format!("securityContext.{key}")))
        };
        assert_eq!(
            effective("runAsNonRoot").and_then(Value::as_bool),
            Some(true),
            "{file}"
        );
        assert_eq!(
            effective("runAsUser").and_then(Value::as_u64),
            Some(65532),
            "{file}"
        );
        assert_eq!(
            at(fedsync, "securityContext.readOnlyRootFilesystem").and_then(Value::as_bool),
            Some(true),
            "{file}"
        );
        assert_eq!(
            at(fedsync, "securityContext.allowPrivilegeEscalation").and_then(Value::as_bool),
            Some(false),
            "{file}"
        );
        assert!(
            seq_at(fedsync, "securityContext.capabilities.drop")
                .iter()
                .any(|c| c.as_str() == Some("ALL")),
            "{file}: drops ALL capabilities"
        );
        // With a read-only root, the data directory must be a volume.
        let (config, _) = fedsync_config(file);
        let data_dir = config.data_dir.clone();
        assert!(
            data_dir.is_absolute(),
            "{file}: data_dir {data_dir:?} is not absolute"
        );
        assert!(
            seq_at(fedsync, "volumeMounts")
                .iter()
                .any(|m| str_at(m, "mountPath").map(Path::new) == Some(&data_dir)
                    && at(m, "readOnly").and_then(Value::as_bool) != Some(true)),
            "{file}: a writable volume at {}",
            data_dir.display()
        );
        // A replica that generated its own keys on a fresh volume could not
        // read what another wrote to the shared database.
        if !config.database.url.is_empty() && !config.database.url.expose().starts_with("sqlite") {
            assert!(
                config.keys.signing_key_file.is_some(),
                "{file}: keys.signing_key_file"
            );
            assert!(
                config.keys.encryption_key_file.is_some(),
                "{file}: keys.encryption_key_file"
            );
        }
    }
}

#[test]
fn every_volume_and_object_reference_resolves() {
    for (file, docs) in manifests() {
        for pod in pod_templates(&docs) {
            let volumes = seq_at(pod.spec, "volumes");
            let mut declared = BTreeSet::new();
            for v in volumes {
                let v_name =
                    str_at(v, "name").unwrap_or_else(|| panic!("{file}: a volume without a name"));
                assert!(declared.insert(v_name), "{file}: volume {v_name} twice");
                if let Some(map) = at(v, "configMap") {
                    let map = str_at(map, "name").unwrap_or("");
                    assert!(
                        find(&docs, "ConfigMap", map).is_some(),
                        "{file}: volume {v_name} names ConfigMap {map:?}, which the file does not hold"
                    );
                }
                if let Some(secret) = at(v, "secret") {
                    let secret = str_at(secret, "secretName").unwrap_or("");
                    assert!(
                        !secret.is_empty(),
                        "{file}: volume {v_name} names no Secret"
                    );
                }
                if let Some(claim) = at(v, "persistentVolumeClaim") {
                    let claim = str_at(claim, "claimName").unwrap_or("");
                    assert!(
                        find(&docs, "PersistentVolumeClaim", claim).is_some(),
                        "{file}: volume {v_name} names claim {claim:?}, which the file does not hold"
                    );
                }
            }
            for (_, c) in all_containers(pod.spec) {
                let c_name = str_at(c, "name").unwrap_or("?");
                let mut paths = BTreeSet::new();
                for m in seq_at(c, "volumeMounts") {
                    let m_name = str_at(m, "name").unwrap_or("");
                    assert!(
                        declared.contains(m_name),
                        "{file}: {} container {c_name} mounts undeclared volume {m_name:?}",
                        pod.workload
                    );
                    assert!(
                        paths.insert(str_at(m, "mountPath").unwrap_or("")),
                        "{file}: {c_name} mounts one path twice"
                    );
                    // Kubernetes never updates a subPath mount: a rotated
                    // Secret (the Corteza token) would not reach the file.
                    let secret_volume = volumes
                        .iter()
                        .any(|v| str_at(v, "name") == Some(m_name) && at(v, "secret").is_some());
                    assert!(
                        !(secret_volume && at(m, "subPath").is_some()),
                        "{file}: {c_name} mounts Secret volume {m_name} with a subPath"
                    );
                }
                for e in seq_at(c, "env") {
                    for kind_ in ["secretKeyRef", "configMapKeyRef"] {
                        if let Some(r) = at(e, &format!("valueFrom.{kind_}")) {
                            for key in ["name", "key"] {
                                assert!(
                                    !str_at(r, key).unwrap_or("").is_empty(),
                                    "{file}: {c_name} env {:?}: {kind_} without {key}",
                                    str_at(e, "name")
                                );
                            }
                        }
                        if kind_ == "configMapKeyRef"
                            && let Some(map) = str_at(e, "valueFrom.configMapKeyRef.name")
                        {
                            assert!(
                                find(&docs, "ConfigMap", map).is_some(),
                                "{file}: no ConfigMap {map}"
                            );
                        }
                    }
                }
            }
        }
    }
}

fn looks_secret(name_: &str, value: &str) -> bool {
    let upper = name_.to_ascii_uppercase();
    ["TOKEN", "PASSWORD", "SECRET", "DSN", "KEY"]
        .iter()
        .any(|w| upper.contains(w))
        || (value.contains("://") && value.contains('@'))
}

#[test]
fn manifests_carry_no_secret_value() {
    assert!(looks_secret("DB_DSN", "x") && looks_secret("X", "postgres://u:p@db/x"));
    assert!(!looks_secret("FEDSYNC_CONFIG", "/etc/fedsync/fedsync.toml"));
    for (file, docs) in manifests() {
        for doc in docs.iter().filter(|d| kind(d) == "Secret") {
            for key in ["data", "stringData"] {
                let empty = at(doc, key)
                    .is_none_or(|v| v.is_null() || v.as_mapping().is_some_and(|m| m.is_empty()));
                assert!(empty, "{file}: Secret {} carries {key}", name(doc));
            }
        }
        for pod in pod_templates(&docs) {
            for (_, c) in all_containers(pod.spec) {
                for (env_name, value) in literal_env(c) {
                    assert!(
                        !looks_secret(&env_name, &value),
                        "{file}: container {:?} sets {env_name} literally: take it from a Secret",
                        str_at(c, "name")
                    );
                }
            }
        }
    }
    // fedsync's own secrets come as *_file paths, never inline.
    for file in [SIDECAR, STANDALONE] {
        let (_, table) = fedsync_config(file);
        for key in [
            "database.url",
            "keys.signing_key",
            "keys.encryption_key",
            "notify.webhook_urls",
            "notify.webhook_secret",
            "notify.smtp.password",
            "local.corteza_token",
        ] {
            let value = toml_at(&table, key);
            let inline = value.and_then(toml::Value::as_str).unwrap_or("");
            assert!(
                inline.is_empty(),
                "{file}: fedsync.toml sets {key} inline: use {key}_file"
            );
        }
    }
}

#[test]
fn readme_tells_how_to_create_every_referenced_secret() {
    let readme = std::fs::read_to_string(deploy_dir().join("README.md")).unwrap();
    // Secret name -> the keys the manifests read from it.
    let mut wanted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (_, docs) in manifests() {
        for pod in pod_templates(&docs) {
            for (_, c) in all_containers(pod.spec) {
                for e in seq_at(c, "env") {
                    if let (Some(s), Some(k)) = (
                        str_at(e, "valueFrom.secretKeyRef.name"),
                        str_at(e, "valueFrom.secretKeyRef.key"),
                    ) {
                        wanted.entry(s.to_owned()).or_default().insert(k.to_owned());
                    }
                }
            }
        }
    }
    let (pod_secret_files, mounts) = {
        let files = manifests();
        let (pod, _, fedsync) = fedsync_pod(&files[SIDECAR]);
        let mounts = secret_mounts(&pod, fedsync);
        let (_, table) = fedsync_config(SIDECAR);
        (string_values(&toml::Value::Table(table)), mounts)
    };
    assert!(
        !mounts.is_empty(),
        "the sidecar's secrets come from a Secret volume"
    );
    for (mount, secret) in &mounts {
        let entry = wanted.entry(secret.clone()).or_default();
        for path in &pod_secret_files {
            if let Some(key) = path.strip_prefix(&format!("{mount}/")) {
                entry.insert(key.to_owned());
            }
        }
    }
    for (secret, keys) in wanted {
        let command = format!("kubectl create secret generic {secret}");
        let at_ = readme
            .find(&command)
            .unwrap_or_else(|| panic!("deploy/README.md lacks `{command}`"));
        // The command runs to the first line that does not end with `\`.
        let rest = &readme[at_..];
        let mut end = 0;
        for line in rest.split_inclusive('\n') {
            end += line.len();
            if !line.trim_end().ends_with('\\') {
                break;
            }
        }
        let command_text = &rest[..end];
        for key in keys {
            assert!(
                command_text.contains(&format!("--from-file={key}="))
                    || command_text.contains(&format!("--from-literal={key}=")),
                "deploy/README.md: `{command}` does not give key {key}"
            );
        }
    }
}

#[test]
fn containerfile_builds_the_release_binary_and_runs_unprivileged() {
    let instructions = containerfile();
    assert!(
        instructions.iter().any(|(op, args)| op == "RUN"
            && args
                .split_whitespace()
                .collect::<Vec<_>>()
                .windows(4)
                .any(|w| w == ["cargo", "build", "--release", "--locked"])),
        "no `RUN cargo build --release --locked`"
    );
    // The runtime stage: after the last FROM.
    let runtime = runtime_stage(&instructions);
    let user = runtime
        .iter()
        .rev()
        .find(|(op, _)| op == "USER")
        .map(|(_, args)| args.clone())
        .expect("the runtime stage sets USER");
    let uid = user.split(':').next().unwrap();
    assert!(!matches!(uid, "" | "0" | "root"), "USER {user} is root");
    // A volume an engine creates takes the image directory's owner: each
    // VOLUME directory is made and handed to that user before USER.
    let user_at = runtime.iter().rposition(|(op, _)| op == "USER").unwrap();
    for (_, args) in runtime.iter().filter(|(op, _)| op == "VOLUME") {
        let paths: Vec<String> = match serde_json::from_str::<Vec<String>>(args) {
            Ok(list) => list,
            Err(_) => args.split_whitespace().map(str::to_owned).collect(),
        };
        for path in paths {
            assert!(
                runtime[..user_at].iter().any(|(op, run)| op == "RUN"
                    && run.contains("chown")
                    && run.contains(&format!("{uid}:"))
                    && run.split_whitespace().any(|w| w == path)),
                "VOLUME {path} is not created and chowned to {uid} before USER"
            );
        }
    }
    let default_port = Config::load(None, Vec::new(), &Overrides::default())
        .unwrap()
        .federation
        .listen
        .port();
    let standalone_port = fedsync_config(STANDALONE).0.federation.listen.port();
    let sidecar_port = fedsync_config(SIDECAR).0.federation.listen.port();
    let exposed: BTreeSet<u16> = runtime
        .iter()
        .filter(|(op, _)| op == "EXPOSE")
        .flat_map(|(_, args)| {
            args.split_whitespace()
                .map(|p| p.split('/').next().unwrap().parse::<u16>().unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    for port in [default_port, standalone_port, sidecar_port] {
        assert!(
            exposed.contains(&port),
            "EXPOSE {exposed:?} lacks the federation port {port}"
        );
    }
    // The binary the runtime stage copies is the one cargo builds.
    assert!(
        runtime
            .iter()
            .any(|(op, args)| op == "COPY" && args.contains("target/release/fedsync")),
        "the runtime stage copies target/release/fedsync"
    );
    // The build context leaves out build output.
    let ignore =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(".dockerignore"))
            .expect(".dockerignore at the repository root");
    let ignored: BTreeSet<&str> = ignore
        .lines()
        .map(|l| l.trim().trim_start_matches('/').trim_end_matches('/'))
        .collect();
    for dir in ["target", "fuzz/target"] {
        assert!(
            ignored.contains(dir),
            ".dockerignore does not leave out {dir}/"
        );
    }
}
