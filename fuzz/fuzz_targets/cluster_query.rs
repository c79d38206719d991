//! The cluster query language (placement constraints' `memberOf` expressions): parsing any
//! text and evaluating what parses against an instance must never panic.
#![no_main]

use berth_sched::{Expr, InstanceView};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(expr) = Expr::parse(text) {
        let mut inst = InstanceView {
            id: "0123456789abcdef0123456789abcdef".into(),
            ..InstanceView::default()
        };
        inst.attributes
            .insert("ecs.instance-type".into(), Some("t3.micro".into()));
        inst.attributes
            .insert("ecs.availability-zone".into(), Some("us-east-1a".into()));
        inst.attributes.insert("flag".into(), None);
        inst.task_groups.insert("service:web".into(), 2);
        let _ = expr.matches(&inst);
        let _ = Expr::parse(expr.source());
    }
});
