//! A pull makes the next page ready while the page before it is written,
//! unless the next page reads what that write changes: here, one record a
//! page, records that name the record of the page before them.

use serde_json::Value;

use crate::common::{cli_json, pair, spawn_node, spawn_node_with};
use crate::data::records;

async fn create(d: &crate::common::TestDaemon, name: &str, mentor: Option<&str>) -> String {
    let mut args = vec![
        "record".to_owned(),
        "create".into(),
        "Person".into(),
        "--value".into(),
        format!("Name={name}"),
    ];
    if let Some(mentor) = mentor {
        args.extend(["--value".into(), format!("Mentor={mentor}")]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let record = cli_json(d, &args).await;
    record["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_reference_to_the_page_before_is_translated_one_record_a_page() {
    let mut a = spawn_node("A").await;
    let mut b = spawn_node_with("B", |o| {
        o.set("sync.data_page_size", 1);
    })
    .await;
    let (a_for_b, b_for_a) = pair(&a, &b).await;
    let (a_for_b, b_for_a) = (a_for_b.to_string(), b_for_a.to_string());
    let person = ["--field", "Name:String", "--field", "Mentor:Record"];
    let mut args = vec!["module", "create", "--handle", "Person"];
    args.extend(person);
    cli_json(&a, &args).await;
    cli_json(
        &a,
        &[
            "expose", "add", &a_for_b, "Person", "--field", "Name", "--field", "Mentor",
        ],
    )
    .await;
    let run = cli_json(&b, &["sync", "now", &b_for_a, "--kind", "structure"]).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let mut args = vec!["module", "create", "--handle", "Member"];
    args.extend(person);
    cli_json(&b, &args).await;
    let mapping = cli_json(
        &b,
        &[
            "map",
            "set",
            &b_for_a,
            "Person",
            "--to",
            "Member",
            "--field",
            "Name=Name",
            "--field",
            "Mentor=Mentor",
        ],
    )
    .await;
    assert_eq!(mapping["status"], "ok", "{mapping}");

    // m0 <- m1 <- ... <- m4, each on the page right after the one it
    // names; then three records that name nobody (made ready ahead), then
    // m5, naming m4 three pages back.
    let mut mentor = create(&a, "m0", None).await;
    for i in 1..5 {
        mentor = create(&a, &format!("m{i}"), Some(&mentor)).await;
    }
    for i in 1..4 {
        create(&a, &format!("free{i}"), None).await;
    }
    create(&a, "m5", Some(&mentor)).await;
    let runs = cli_json(&b, &["sync", "now", &b_for_a, "--kind", "data"]).await;
    let run = &runs[0];
    assert_eq!(
        (&run["created"], &run["errors"], &run["status"]),
        (&Value::from(9), &Value::from(0), &Value::from("succeeded")),
        "{run}"
    );
    let members = records(&b, "Member", false).await;
    let id_of = |name: &str| {
        members
            .iter()
            .find(|r| r["values"]["Name"] == name)
            .unwrap_or_else(|| panic!("{name} did not arrive: {members:?}"))["id"]
            .clone()
    };
    for i in 1..6 {
        let member = members
            .iter()
            .find(|r| r["values"]["Name"] == format!("m{i}"))
            .unwrap();
        assert_eq!(
            member["values"]["Mentor"],
            id_of(&format!("m{}", i - 1)),
            "m{i} names B's copy of its mentor: {member}"
        );
    }
    a.stop().await;
    b.stop().await;
}
