//! Variables with Zeebe's scope rules: lookups walk from an element's scope up to the process;
//! merged variables update the nearest scope that has them, else land on the process; local
//! ones stay on the element. Input and output mappings, and the FEEL view of a scope.

use std::borrow::Cow;
use std::cell::RefCell;

use super::Error;
use super::context::Ctx;
use super::event::Event;
use super::state::Reader;
use crate::feel::{Context, Expression, Value, Variables};
use crate::model::Mapping;

/// The scope keys from `scope` outwards to the process instance.
pub(crate) fn chain(r: Reader<'_>, scope: u64) -> Result<Vec<u64>, Error> {
    let mut out = vec![scope];
    let mut current = scope;
    while let Some(parent) = r.element_required(current)?.scope {
        out.push(parent);
        current = parent;
    }
    Ok(out)
}

/// What an expression sees: optional extra variables (a job result, a message), then the scope
/// chain. Storage errors met during lookups are kept and reported after evaluation.
pub(crate) struct ScopeVars<'r> {
    r: Reader<'r>,
    chain: Vec<u64>,
    extra: Option<&'r Context>,
    error: RefCell<Option<Error>>,
}

impl<'r> ScopeVars<'r> {
    pub(crate) fn new(
        r: Reader<'r>,
        scope: u64,
        extra: Option<&'r Context>,
    ) -> Result<ScopeVars<'r>, Error> {
        Ok(ScopeVars {
            r,
            chain: chain(r, scope)?,
            extra,
            error: RefCell::new(None),
        })
    }

    fn take_error(&self) -> Option<Error> {
        self.error.borrow_mut().take()
    }
}

impl Variables for ScopeVars<'_> {
    fn get(&self, name: &str) -> Option<Cow<'_, Value>> {
        if let Some(v) = self.extra.and_then(|e| e.get(name)) {
            return Some(Cow::Borrowed(v));
        }
        for scope in &self.chain {
            match self.r.variable(*scope, name) {
                Ok(Some(v)) => return Some(Cow::Owned(v)),
                Ok(None) => {}
                Err(e) => {
                    *self.error.borrow_mut() = Some(e);
                    return None;
                }
            }
        }
        None
    }
}

/// Evaluates an expression in a scope. The outer error is storage; the inner one is why the
/// expression failed, for an incident.
pub(crate) fn eval(
    ctx: &Ctx<'_>,
    expr: &Expression,
    scope: u64,
    extra: Option<&Context>,
) -> Result<Result<Value, String>, Error> {
    if expr.is_constant() {
        // Static attribute values need no scope walk.
        return Ok(expr
            .evaluate(&crate::feel::NoVariables, ctx.now_ts())
            .map(|e| e.value)
            .map_err(|e| e.to_string()));
    }
    let vars = ScopeVars::new(ctx.r(), scope, extra)?;
    let result = expr.evaluate(&vars, ctx.now_ts());
    if let Some(e) = vars.take_error() {
        return Err(e);
    }
    Ok(match result {
        Ok(r) => Ok(r.value),
        Err(e) => Err(format!(
            "failed to evaluate expression '{}': {e}",
            expr.source()
        )),
    })
}

/// Appends to `msg` why the expressions met nulls (missing variables), if they did.
pub(crate) fn explain(
    ctx: &Ctx<'_>,
    exprs: &[&Expression],
    scope: u64,
    msg: String,
) -> Result<String, Error> {
    let mut warnings: Vec<String> = Vec::new();
    for expr in exprs.iter().filter(|e| !e.is_constant()) {
        let vars = ScopeVars::new(ctx.r(), scope, None)?;
        for w in expr
            .evaluate(&vars, ctx.now_ts())
            .map(|e| e.warnings)
            .unwrap_or_default()
        {
            if !warnings.contains(&w) {
                warnings.push(w);
            }
        }
    }
    Ok(if warnings.is_empty() {
        msg
    } else {
        format!("{msg} ({})", warnings.join("; "))
    })
}

/// Evaluates to a string (numbers are turned into their text, as Zeebe does for keys).
pub(crate) fn eval_string(
    ctx: &Ctx<'_>,
    expr: &Expression,
    scope: u64,
    what: &str,
    allow_number: bool,
) -> Result<Result<String, String>, Error> {
    Ok(match eval(ctx, expr, scope, None)? {
        Ok(Value::String(s)) => Ok(s),
        Ok(Value::Number(n)) if allow_number => Ok(n.normalize().to_string()),
        Ok(other) => {
            let expected = if allow_number {
                "a string or a number"
            } else {
                "a string"
            };
            Err(explain(
                ctx,
                &[expr],
                scope,
                format!(
                    "expected {what} '{}' to be {expected}, but it was {}",
                    expr.source(),
                    other.type_name()
                ),
            )?)
        }
        Err(e) => Err(e),
    })
}

/// Evaluates a condition: it must be a boolean.
pub(crate) fn eval_bool(
    ctx: &Ctx<'_>,
    expr: &Expression,
    scope: u64,
) -> Result<Result<bool, String>, Error> {
    Ok(match eval(ctx, expr, scope, None)? {
        Ok(Value::Bool(b)) => Ok(b),
        Ok(other) => Err(explain(
            ctx,
            &[expr],
            scope,
            format!(
                "expected condition '{}' to be a boolean, but it was {}",
                expr.source(),
                other.type_name()
            ),
        )?),
        Err(e) => Err(e),
    })
}

/// Sets a variable on exactly this scope.
pub(crate) fn set_local(
    ctx: &mut Ctx<'_>,
    scope: u64,
    instance: u64,
    name: &str,
    value: Value,
) -> Result<(), Error> {
    let value = value.into_variable();
    match ctx.r().variable(scope, name)? {
        Some(old) if old == value => Ok(()),
        Some(_) => ctx.emit(Event::VariableUpdated {
            scope,
            name: name.to_owned(),
            value,
            instance,
        }),
        None => ctx.emit(Event::VariableCreated {
            scope,
            name: name.to_owned(),
            value,
            instance,
        }),
    }
}

/// Merges variables into the scopes from `scope` outwards: each updates the nearest scope that
/// has it, or is created on the process.
pub(crate) fn merge(
    ctx: &mut Ctx<'_>,
    scope: u64,
    instance: u64,
    vars: Context,
) -> Result<(), Error> {
    if vars.is_empty() {
        return Ok(());
    }
    let chain = chain(ctx.r(), scope)?;
    for (name, value) in vars {
        let mut target = instance;
        for s in &chain {
            if ctx.r().variable(*s, &name)?.is_some() {
                target = *s;
                break;
            }
        }
        set_local(ctx, target, instance, &name, value)?;
    }
    Ok(())
}

/// Every variable visible from a scope, inner scopes shadowing outer ones.
pub(crate) fn visible(r: Reader<'_>, scope: u64) -> Result<Context, Error> {
    let mut out = Context::new();
    for s in chain(r, scope)?.into_iter().rev() {
        for (name, value) in r.local_variables(s)? {
            out.insert(name, value);
        }
    }
    Ok(out)
}

/// Puts `value` at `path` inside `base` (a context, or nothing), creating contexts on the way.
fn assign(base: Option<Value>, path: &[String], value: Value) -> Value {
    let Some((first, rest)) = path.split_first() else {
        return value;
    };
    let mut ctx = match base {
        Some(Value::Context(c)) => c,
        _ => Context::new(),
    };
    let inner = ctx.remove(first);
    ctx.insert(first.clone(), assign(inner, rest, value));
    Value::Context(ctx)
}

/// Applies input mappings: each creates a local variable of the element, in order (a later
/// mapping sees the earlier ones).
pub(crate) fn apply_inputs(
    ctx: &mut Ctx<'_>,
    key: u64,
    instance: u64,
    inputs: &[Mapping],
) -> Result<Result<(), String>, Error> {
    for m in inputs {
        let value = match eval(ctx, &m.source, key, None)? {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        let Some((top, rest)) = m.target.split_first() else {
            continue;
        };
        let value = if rest.is_empty() {
            value
        } else {
            assign(ctx.r().variable(key, top)?, rest, value)
        };
        set_local(ctx, key, instance, top, value)?;
    }
    Ok(Ok(()))
}

/// Applies output mappings of an element: sources see the element's variables (and `extra`),
/// targets are merged into the element's flow scope.
pub(crate) fn apply_outputs(
    ctx: &mut Ctx<'_>,
    key: u64,
    flow_scope: u64,
    instance: u64,
    outputs: &[Mapping],
    extra: Option<&Context>,
) -> Result<Result<(), String>, Error> {
    let mut values = Vec::with_capacity(outputs.len());
    for m in outputs {
        match eval(ctx, &m.source, key, extra)? {
            Ok(v) => values.push(v),
            Err(e) => return Ok(Err(e)),
        }
    }
    for (m, value) in outputs.iter().zip(values) {
        let Some((top, rest)) = m.target.split_first() else {
            continue;
        };
        let value = if rest.is_empty() {
            value
        } else {
            let current = ScopeVars::new(ctx.r(), flow_scope, None)?
                .get(top)
                .map(Cow::into_owned);
            assign(current, rest, value)
        };
        let mut one = Context::new();
        one.insert(top.clone(), value);
        merge(ctx, flow_scope, instance, one)?;
    }
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_targets_create_and_keep_siblings() {
        let base = Value::from_json(&serde_json::json!({"b": 1}));
        let v = assign(Some(base), &["c".to_owned()], Value::from(2));
        assert_eq!(v.to_json(), serde_json::json!({"b": 1, "c": 2}));
        let v = assign(None, &["x".to_owned(), "y".to_owned()], Value::from(3));
        assert_eq!(v.to_json(), serde_json::json!({"x": {"y": 3}}));
    }
}
