//! Compiles the admin protos with protox (pure Rust, no system protoc) and
//! tonic-prost-build, and writes the descriptor set that gRPC reflection serves.

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    // The migrations are embedded by sqlx::migrate!; a new file must rebuild.
    println!("cargo:rerun-if-changed=src/store/sqlite/migrations");
    println!("cargo:rerun-if-changed=src/store/postgres/migrations");

    let protos: Vec<PathBuf> = std::fs::read_dir("proto/fedsync/admin/v1")?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    let mut protos: Vec<PathBuf> = protos
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "proto"))
        .collect();
    protos.sort();

    let fds = protox::compile(&protos, ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("fedsync_admin_descriptor.bin"),
        fds.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
