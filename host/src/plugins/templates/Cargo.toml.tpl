[package]
name = "{{name}}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
# The SDK is vendored in ./sdk (it is not published to a registry); ./wit holds
# the contract it is generated from. Both came from `switchyard plugin new`.
switchyard-plugin-sdk = { path = "sdk" }
serde = { version = "1", features = ["derive"] }
schemars = "1"

[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
strip = true

# A workspace of its own, so the crate builds wherever it is placed.
[workspace]
