//! `webmks-sim`: see the library ([`webmks_sim::main`]).

fn main() -> std::process::ExitCode {
    webmks_sim::main()
}
