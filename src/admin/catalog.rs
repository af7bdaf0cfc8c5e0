//! `ModuleService`, `ExposureService`, `SharedModuleService` and
//! `MappingService`: the catalog of the engine, over gRPC.

use tonic::{Request, Response, Status};

use super::node::writer;
use super::proto::{self, v1};
use super::server::AdminState;
use super::status::from_catalog;
use crate::domain::{FieldKind, LocalField, NodeId};
use crate::sync::catalog::{ModuleUpdate, check_field_name};

fn node_key(id: u64) -> Result<String, Status> {
    NodeId::from_u64(id)
        .map(|id| id.to_string())
        .ok_or_else(|| Status::invalid_argument("node_id is required (a non-zero node id)"))
}

fn local_fields(fields: &[v1::Field]) -> Result<Vec<LocalField>, Status> {
    fields
        .iter()
        .map(|f| {
            check_field_name(&f.name).map_err(Status::invalid_argument)?;
            let kind = FieldKind::parse(&f.kind)
                .map_err(|e| Status::invalid_argument(format!("field `{}`: {e}", f.name)))?;
            Ok(LocalField {
                name: f.name.clone(),
                kind,
                label: if f.label.is_empty() {
                    f.name.clone()
                } else {
                    f.label.clone()
                },
                is_multi: f.is_multi,
            })
        })
        .collect()
}

pub struct ModuleApi {
    state: AdminState,
}

impl ModuleApi {
    pub fn new(state: AdminState) -> ModuleApi {
        ModuleApi { state }
    }
}

#[tonic::async_trait]
impl v1::module_service_server::ModuleService for ModuleApi {
    #[tracing::instrument(skip_all)]
    async fn create_module(
        &self,
        request: Request<v1::CreateModuleRequest>,
    ) -> Result<Response<v1::Module>, Status> {
        let actor = writer(&request)?;
        let r = request.into_inner();
        let module = self
            .state
            .catalog
            .create_module(&actor, &r.handle, &r.name, local_fields(&r.fields)?)
            .await
            .map_err(from_catalog)?;
        Ok(Response::new(proto::module(&module)))
    }

    #[tracing::instrument(skip_all)]
    async fn list_modules(
        &self,
        _request: Request<v1::ListModulesRequest>,
    ) -> Result<Response<v1::ListModulesResponse>, Status> {
        let modules = self
            .state
            .catalog
            .list_modules()
            .await
            .map_err(from_catalog)?;
        Ok(Response::new(v1::ListModulesResponse {
            modules: modules.iter().map(proto::module).collect(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_module(
        &self,
        request: Request<v1::ModuleRef>,
    ) -> Result<Response<v1::Module>, Status> {
        let module = self
            .state
            .catalog
            .module(&request.get_ref().key)
            .await
            .map_err(from_catalog)?;
        Ok(Response::new(proto::module(&module)))
    }

    #[tracing::instrument(skip_all)]
    async fn update_module(
        &self,
        request: Request<v1::UpdateModuleRequest>,
    ) -> Result<Response<v1::Module>, Status> {
        let actor = writer(&request)?;
        let r = request.into_inner();
        let update = ModuleUpdate {
            handle: r.handle,
            name: r.name,
            fields: if r.replace_fields {
                Some(local_fields(&r.fields)?)
            } else {
                None
            },
        };
        let module = self
            .state
            .catalog
            .update_module(&actor, &r.key, update)
            .await
            .map_err(from_catalog)?;
        Ok(Response::new(proto::module(&module)))
    }

    #[tracing::instrument(skip_all)]
    async fn delete_module(
        &self,
        request: Request<v1::ModuleRef>,
    ) -> Result<Response<v1::Module>, Status> {
        let actor = writer(&request)?;
        let module = self
            .state
            .catalog
            .delete_module(&actor, &request.get_ref().key)
            .await
            .map_err(from_catalog)?;
        Ok(Response::new(proto::module(&module)))
    }
}

pub struct ExposureApi {
    state: AdminState,
}

impl ExposureApi {
    pub fn new(state: AdminState) -> ExposureApi {
        ExposureApi { state }
    }
}

#[tonic::async_trait]
impl v1::exposure_service_server::ExposureService for ExposureApi {
    #[tracing::instrument(skip_all)]
    async fn expose_module(
        &self,
        request: Request<v1::ExposeRequest>,
    ) -> Result<Response<v1::ExposedModule>, Status> {
        let actor = writer(&request)?;
        let r = request.into_inner();
        let exposed = self
            .state
            .catalog
            .expose(&actor, &node_key(r.node_id)?, &r.module, &r.fields)
            .await
            .map_err(from_catalog)?;
        Ok(Response::new(proto::exposed(&exposed)))
    }

    #[tracing::instrument(skip_all)]
    async fn update_exposure(
        &self,
        request: Request<v1::ExposeRequest>,
    ) -> Result<Response<v1::ExposedModule>, Status> {
        let actor = writer(&request)?;
        let r = request.into_inner();
        let exposed = self
            .state
            .catalog
            .update_exposure(&actor, &node_key(r.node_id)?, &r.module, &r.fields)
            .await
            .map_err(from_catalog)?;
        Ok(Response::new(proto::exposed(&exposed)))
    }

    #[tracing::instrument(skip_all)]
    async fn unexpose(
        &self,
        request: Request<v1::ExposureRef>,
    ) -> Result<Response<v1::ExposedModule>, Status> {
        let actor = writer(&request)?;
        let r = request.into_inner();
        let exposed = self
            .state
            .catalog
            .unexpose(&actor, &node_key(r.node_id)?, &r.module)
            .await
            .map_err(from_catalog)?;
        Ok(Response::new(proto::exposed(&exposed)))
    }

    #[tracing::instrument(skip_all)]
    async fn list_exposures(
        &self,
        request: Request<v1::ListExposuresRequest>,
    ) -> Result<Response<v1::ListExposuresResponse>, Status> {
        let modules = self
            .state
            .catalog
            .list_exposures(&node_key(request.get_ref().node_id)?)
            .await
            .map_err(from_catalog)?;
        Ok(Response::new(v1::ListExposuresResponse {
            modules: modules.iter().map(proto::exposed).collect(),
        }))
    }
}

pub struct SharedApi {
    state: AdminState,
}

impl SharedApi {
    pub fn new(state: AdminState) -> SharedApi {
        SharedApi { state }
    }

    async fn mapping_status(&self, shared_id: crate::domain::Id) -> Result<String, Status> {
        Ok(self
            .state
            .store
            .get_mapping(shared_id)
            .await
            .map_err(super::status::from_store)?
            .map(|m| m.status.as_str().to_owned())
            .unwrap_or_default())
    }
}

#[tonic::async_trait]
impl v1::shared_module_service_server::SharedModuleService for SharedApi {
    #[tracing::instrument(skip_all)]
    async fn list_shared_modules(
        &self,
        request: Request<v1::ListSharedModulesRequest>,
    ) -> Result<Response<v1::ListSharedModulesResponse>, Status> {
        let r = request.into_inner();
        let modules = self
            .state
            .catalog
            .list_shared(&node_key(r.node_id)?, r.include_removed)
            .await
            .map_err(from_catalog)?;
        let mut out = Vec::with_capacity(modules.len());
        for m in &modules {
            out.push(proto::shared(m, &self.mapping_status(m.id).await?));
        }
        Ok(Response::new(v1::ListSharedModulesResponse {
            modules: out,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_shared_module(
        &self,
        request: Request<v1::SharedModuleRef>,
    ) -> Result<Response<v1::SharedModule>, Status> {
        let r = request.into_inner();
        let module = self
            .state
            .catalog
            .shared(&node_key(r.node_id)?, &r.shared)
            .await
            .map_err(from_catalog)?;
        let status = self.mapping_status(module.id).await?;
        Ok(Response::new(proto::shared(&module, &status)))
    }
}

pub struct MappingApi {
    state: AdminState,
}

impl MappingApi {
    pub fn new(state: AdminState) -> MappingApi {
        MappingApi { state }
    }
}

fn mapping_view(view: &crate::sync::catalog::MappingView) -> v1::Mapping {
    let local = view.local.as_ref().map(|m| m.handle.as_str()).unwrap_or("");
    proto::mapping(&view.mapping, &view.shared.handle, local)
}

#[tonic::async_trait]
impl v1::mapping_service_server::MappingService for MappingApi {
    #[tracing::instrument(skip_all)]
    async fn set_mapping(
        &self,
        request: Request<v1::SetMappingRequest>,
    ) -> Result<Response<v1::Mapping>, Status> {
        let actor = writer(&request)?;
        let r = request.into_inner();
        let pairs: Vec<(String, String)> = r
            .fields
            .iter()
            .map(|p| (p.origin.clone(), p.destination.clone()))
            .collect();
        let view = self
            .state
            .catalog
            .set_mapping(&actor, &node_key(r.node_id)?, &r.shared, &r.module, &pairs)
            .await
            .map_err(from_catalog)?;
        Ok(Response::new(mapping_view(&view)))
    }

    #[tracing::instrument(skip_all)]
    async fn get_mapping(
        &self,
        request: Request<v1::SharedModuleRef>,
    ) -> Result<Response<v1::Mapping>, Status> {
        let r = request.into_inner();
        let view = self
            .state
            .catalog
            .mapping(&node_key(r.node_id)?, &r.shared)
            .await
            .map_err(from_catalog)?;
        Ok(Response::new(mapping_view(&view)))
    }

    #[tracing::instrument(skip_all)]
    async fn delete_mapping(
        &self,
        request: Request<v1::SharedModuleRef>,
    ) -> Result<Response<v1::Mapping>, Status> {
        let actor = writer(&request)?;
        let r = request.into_inner();
        let view = self
            .state
            .catalog
            .delete_mapping(&actor, &node_key(r.node_id)?, &r.shared)
            .await
            .map_err(from_catalog)?;
        Ok(Response::new(mapping_view(&view)))
    }
}
