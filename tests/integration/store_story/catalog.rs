//! The catalog: local modules, exposed modules (paging, the lastSync
//! filter, tombstones), shared modules and mappings moved together by a
//! structure change; then the runs chapter with the same node.

use chrono::Duration;
use fedsync::domain::{self, Id, IdGenerator, Node, NodeId, Role};
use fedsync::store::{Store, StoreError};

pub(super) async fn catalog(store: &dyn Store, ids: &IdGenerator) {
    use fedsync::domain::{
        ExposedModule, FieldKind, FieldMapping, LocalField, LocalModule, MappingStatus,
        ModuleField, ModuleMapping, SharedModule,
    };
    use fedsync::store::{ExposedPageQuery, StructureChange};
    let now = domain::now();
    let ns = store.embedded_namespace_id(ids.next_id()).await.unwrap();
    assert_eq!(
        store.embedded_namespace_id(ids.next_id()).await.unwrap(),
        ns,
        "recorded once"
    );

    let field = |name: &str, kind, multi| LocalField {
        name: name.into(),
        kind,
        label: name.into(),
        is_multi: multi,
    };
    let mut module = LocalModule {
        id: ids.next_id(),
        namespace_id: ns,
        handle: "account".into(),
        name: "Account".into(),
        fields: vec![
            field("Phone", FieldKind::String, false),
            field("Tags", FieldKind::String, true),
        ],
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    store.insert_local_module(&module).await.unwrap();
    assert_eq!(
        store.get_local_module(module.id).await.unwrap(),
        Some(module.clone())
    );
    let mut twin = module.clone();
    twin.id = ids.next_id();
    assert!(
        matches!(
            store.insert_local_module(&twin).await,
            Err(StoreError::Conflict(_))
        ),
        "handles are unique"
    );
    module.fields = vec![
        field("LinkedIn", FieldKind::Url, false),
        field("Phone", FieldKind::String, false),
    ];
    store.update_local_module(&module).await.unwrap();
    assert_eq!(
        store
            .find_local_module("account")
            .await
            .unwrap()
            .unwrap()
            .fields,
        module.fields,
        "fields replaced, in order"
    );
    assert_eq!(store.list_local_modules().await.unwrap().len(), 1);

    // Exposed modules: paging by id, the lastSync filter, tombstones on request.
    let node = Node::new_pending(
        NodeId(ids.next_id()),
        Role::Inviter,
        "n",
        "https://n.example/federation",
        "",
        now,
    );
    store.insert_node(&node).await.unwrap();
    let mut exposed = Vec::new();
    for i in 0..5 {
        let e = ExposedModule {
            id: ids.next_id(),
            node_id: node.id,
            module_id: if i == 0 {
                module.id
            } else {
                Id::new(1000 + i as u64).unwrap()
            },
            namespace_id: ns,
            handle: format!("e{i}"),
            name: format!("E{i}"),
            fields: vec![ModuleField {
                kind: "Url".into(),
                name: "LinkedIn".into(),
                label: "LinkedIn".into(),
                is_multi: false,
            }],
            created_at: now,
            updated_at: now + Duration::seconds(i),
            deleted_at: (i == 4).then_some(now),
        };
        store.insert_exposed_module(&e).await.unwrap();
        exposed.push(e);
    }
    let page = |since, after, include_deleted, limit| ExposedPageQuery {
        node_id: node.id,
        since,
        after,
        include_deleted,
        limit,
    };
    let first = store
        .page_exposed_modules(&page(None, None, false, 2))
        .await
        .unwrap();
    assert_eq!(
        first.iter().map(|m| m.handle.as_str()).collect::<Vec<_>>(),
        ["e0", "e1"]
    );
    let next = store
        .page_exposed_modules(&page(None, Some(first[1].id), false, 10))
        .await
        .unwrap();
    assert_eq!(
        next.iter().map(|m| m.handle.as_str()).collect::<Vec<_>>(),
        ["e2", "e3"]
    );
    let with_tombstones = store
        .page_exposed_modules(&page(None, Some(first[1].id), true, 10))
        .await
        .unwrap();
    assert_eq!(with_tombstones.len(), 3);
    let since = store
        .page_exposed_modules(&page(Some(now + Duration::seconds(3)), None, true, 10))
        .await
        .unwrap();
    assert_eq!(
        since.iter().map(|m| m.handle.as_str()).collect::<Vec<_>>(),
        ["e3", "e4"]
    );
    assert_eq!(
        store
            .find_exposed_module(node.id, module.id)
            .await
            .unwrap()
            .map(|m| m.handle),
        Some("e0".into())
    );
    assert_eq!(
        store
            .list_exposures_of_module(module.id)
            .await
            .unwrap()
            .len(),
        1
    );
    let mut changed = exposed[0].clone();
    changed.fields.clear();
    changed.deleted_at = Some(now);
    store.update_exposed_module(&changed).await.unwrap();
    assert_eq!(
        store.get_exposed_module(changed.id).await.unwrap(),
        Some(changed)
    );
    assert_eq!(store.list_exposed_modules(node.id).await.unwrap().len(), 3);

    // Shared modules and mappings move together in a structure change.
    let shared = SharedModule {
        id: ids.next_id(),
        node_id: node.id,
        external_module_id: Id::new(523615093121024101).unwrap(),
        origin_module_id: Some(Id::new(7).unwrap()),
        origin_namespace_id: None,
        handle: "contact_fed".into(),
        name: "Contact".into(),
        fields: vec![ModuleField {
            kind: "Text".into(),
            name: "body".into(),
            label: String::new(),
            is_multi: false,
        }],
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    store
        .apply_structure_change(&StructureChange {
            upsert_shared: vec![shared.clone()],
            mapping_status: vec![],
        })
        .await
        .unwrap();
    assert_eq!(
        store
            .find_shared_module(node.id, shared.external_module_id)
            .await
            .unwrap(),
        Some(shared.clone())
    );
    let mapping = ModuleMapping {
        id: ids.next_id(),
        node_id: node.id,
        shared_module_id: shared.id,
        local_module_id: module.id,
        namespace_id: ns,
        fields: vec![FieldMapping {
            origin: shared.fields[0].clone(),
            destination: module.fields[1].to_module_field(),
        }],
        status: MappingStatus::Ok,
        status_reason: String::new(),
        created_at: now,
        updated_at: now,
    };
    store.put_mapping(&mapping).await.unwrap();
    assert_eq!(
        store.get_mapping(shared.id).await.unwrap(),
        Some(mapping.clone())
    );
    let mut renamed = shared.clone();
    renamed.handle = "contact".into();
    renamed.deleted_at = Some(now);
    // The upsert keeps the row (same id) even when given a fresh id.
    let mut fresh_id = renamed.clone();
    fresh_id.id = ids.next_id();
    store
        .apply_structure_change(&StructureChange {
            upsert_shared: vec![fresh_id],
            mapping_status: vec![(
                mapping.id,
                MappingStatus::Broken,
                "origin field `body` was removed".into(),
                now,
            )],
        })
        .await
        .unwrap();
    assert_eq!(
        store.get_shared_module(shared.id).await.unwrap(),
        Some(renamed)
    );
    assert!(
        store
            .list_shared_modules(node.id, false)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .list_shared_modules(node.id, true)
            .await
            .unwrap()
            .len(),
        1
    );
    let broken = store.get_mapping(shared.id).await.unwrap().unwrap();
    assert_eq!(
        (broken.status, broken.status_reason.as_str()),
        (MappingStatus::Broken, "origin field `body` was removed")
    );
    assert_eq!(store.list_mappings(node.id).await.unwrap().len(), 1);
    assert_eq!(store.list_mappings_to(module.id).await.unwrap().len(), 1);
    assert!(store.delete_mapping(shared.id).await.unwrap());
    assert!(!store.delete_mapping(shared.id).await.unwrap());
    super::runs::runs(store, ids, &node, now).await;
}
