fn main() {
    print!("{}", lifeboat_api::crds::to_yaml().unwrap());
}
