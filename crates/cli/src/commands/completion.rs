//! `lifeboat completion SHELL`: the shell completion script, generated from the command
//! line definition by clap_complete (so it never falls behind the flags).

use clap::CommandFactory;
use clap_complete::Shell;

use super::{Cli, EXIT_OK};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The shell to complete for: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn run(args: Args) -> u8 {
    let mut command = Cli::command();
    clap_complete::generate(args.shell, &mut command, "lifeboat", &mut std::io::stdout());
    EXIT_OK
}
