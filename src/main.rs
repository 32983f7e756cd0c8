fn main() {
    println!("lambda-hat");
}
