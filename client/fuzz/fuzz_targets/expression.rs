//! The UI-spec expression parser and evaluator never panic or overflow the stack on any input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_station::expr::{Expr, Value, Vars};

struct V;
impl Vars for V {
    fn field(&self, name: &str) -> Value {
        Value::Str(name.to_owned())
    }
    fn ident(&self, name: &str) -> Option<Value> {
        name.len().is_multiple_of(2).then_some(Value::Bool(true))
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data)
        && let Ok(e) = Expr::parse(s)
    {
        let _ = e.eval(&V);
    }
});
