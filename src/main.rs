fn main() {
    println!("minivrrp {}", env!("CARGO_PKG_VERSION"));
}
