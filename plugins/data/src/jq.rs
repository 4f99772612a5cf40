//! jq filters with jaq (a jq clone): compile, run over one input, collect results.

use switchyard_plugin_sdk::{Error, Result, Value, serde_json};

/// Most results one query returns.
const MAX_RESULTS: usize = 10_000;

/// Run `filter` over `input` and return every output value.
pub fn run(filter: &str, input: Value) -> Result<Vec<Value>> {
    use jaq_core::load::{Arena, File, Loader};
    use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};

    let input = jaq_json::read::parse_single(input.to_string().as_bytes())
        .map_err(|e| Error::invalid_input(format!("input: {e:?}")))?;
    let program = File {
        code: filter,
        path: (),
    };
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs());
    let funs = jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs());
    let loader = Loader::new(defs);
    let arena = Arena::default();
    let modules = loader.load(&arena, program).map_err(|errs| {
        Error::invalid_input(format!(
            "invalid jq filter: {:?}",
            errs.into_iter().map(|(_, e)| e).collect::<Vec<_>>()
        ))
    })?;
    let compiled = Compiler::default()
        .with_funs(funs)
        .compile(modules)
        .map_err(|errs| {
            Error::invalid_input(format!(
                "invalid jq filter: {:?}",
                errs.into_iter().map(|(_, e)| e).collect::<Vec<_>>()
            ))
        })?;
    let ctx = Ctx::<data::JustLut<jaq_json::Val>>::new(&compiled.lut, Vars::new([]));
    let mut results = Vec::new();
    for out in compiled.id.run((ctx, input)).map(unwrap_valr) {
        if results.len() == MAX_RESULTS {
            return Err(Error::invalid_input(format!(
                "the filter produced more than {MAX_RESULTS} results"
            )));
        }
        let value = out.map_err(|e| Error::invalid_input(format!("jq error: {e}")))?;
        let value: Value = serde_json::from_str(&value.to_string()).map_err(|e| {
            Error::failed(format!(
                "jq produced a value that is not JSON ({e}): {value}"
            ))
        })?;
        results.push(value);
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::run;
    use switchyard_plugin_sdk::json;

    #[test]
    fn queries_and_transforms() {
        let input = json!({"items": [{"name": "a", "price": 5}, {"name": "b", "price": 20}]});
        assert_eq!(
            run(".items[] | select(.price > 10) | .name", input.clone()).unwrap(),
            vec![json!("b")]
        );
        assert_eq!(
            run("[.items[].price] | add", input.clone()).unwrap(),
            vec![json!(25)]
        );
        assert_eq!(
            run(".items | map({(.name): .price}) | add", input).unwrap(),
            vec![json!({"a": 5, "b": 20})]
        );
        assert!(run(".[", json!(1)).is_err());
        assert!(run("error(\"boom\")", json!(1)).is_err());
    }
}
