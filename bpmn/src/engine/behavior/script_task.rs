//! Script tasks with `zeebe:script`: the FEEL expression's result goes into the result variable.

use super::{Behavior, Ctx, ElementInstance, Error, Leave, Process, lifecycle};
use crate::engine::records::IncidentKind;
use crate::engine::variables;
use crate::feel::Context;
use crate::model::{Kind, Script, TaskKind};

pub(super) struct ScriptTask;

impl Behavior for ScriptTask {
    fn activate(
        &self,
        ctx: &mut Ctx<'_>,
        el: &ElementInstance,
        model: &Process,
        _: Option<Context>,
    ) -> Result<(), Error> {
        let Kind::Task(TaskKind::Script(Script::Expression {
            expression,
            result_variable,
        })) = &model.element(el.element).kind
        else {
            return Err(Error::Corrupt(
                "script behaviour on a non-script element".to_owned(),
            ));
        };
        let value = match variables::eval(ctx, expression, el.key, None)? {
            Ok(v) => v,
            Err(msg) => return ctx.incident(el.key, IncidentKind::Expression, msg, None),
        };
        lifecycle::activated(ctx, el)?;
        let mut result = Context::new();
        result.insert(result_variable.clone(), value);
        lifecycle::complete(ctx, el.key, Some(result), Leave::All)
    }
}
