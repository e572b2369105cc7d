//! `lifeboat crds`: the CustomResourceDefinitions generated from the API types.

use std::path::PathBuf;

use anyhow::Context;

use super::EXIT_OK;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Write one file per CRD (`<plural>.<group>.yaml`) into this directory instead of
    /// printing one multi-document stream.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    match args.out {
        None => {
            let yaml = lifeboat_api::crds::to_yaml().context("cannot render the CRDs")?;
            print!("{yaml}");
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            for crd in lifeboat_api::crds::all() {
                let path = dir.join(lifeboat_api::crds::file_name(&crd));
                let yaml = serde_yaml::to_string(&crd).context("cannot render a CRD")?;
                std::fs::write(&path, yaml)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                println!("wrote {}", path.display());
            }
        }
    }
    Ok(EXIT_OK)
}
