//! Test support: arbitrary JSON values with the wire's own keys among the
//! random ones, for the decoders' property tests.

/// Arbitrary JSON values for property tests, with the wire's own keys
/// among the random ones so the decoders get past their first checks.
#[cfg(test)]
pub(crate) fn arbitrary_json() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
    use proptest::prelude::*;
    use serde_json::Value;
    const KEYS: &[&str] = &[
        "response",
        "set",
        "filter",
        "recordID",
        "values",
        "name",
        "value",
        "yours",
        "createdAt",
        "updatedAt",
        "deletedAt",
        "nextPage",
        "resume",
        "total",
        "moduleID",
        "composeModuleID",
        "composeNamespaceID",
        "handle",
        "fields",
        "kind",
        "label",
        "isMulti",
        "pairToken",
        "authToken",
        "sharedNodeID",
        "nodeURI",
        "token",
        "nodeIDB",
        "fedsync",
        "version",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[0-9]{1,20}".prop_map(Value::from),
        "\\PC{0,24}".prop_map(Value::from),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})"
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        let key = prop_oneof![
            3 => proptest::sample::select(KEYS).prop_map(str::to_owned),
            1 => "[a-zA-Z]{0,8}",
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::vec((key, inner), 0..7)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}
