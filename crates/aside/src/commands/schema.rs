//! `aside schema`: the JSON Schema of the wire protocol, generated from its types.

pub fn run() -> anyhow::Result<i32> {
    crate::render::print_json(&aside_protocol::schema())?;
    Ok(0)
}
