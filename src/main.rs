//! The `parley` binary: all the work is in the library.

#[tokio::main]
async fn main() {
    std::process::exit(parley::cli::run().await);
}
