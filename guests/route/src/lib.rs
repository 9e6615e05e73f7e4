//! route: changes the route in envelope mode, appending the actor `payload.append`.
//!
//! The appended actor defaults to `echo`. With `payload.bad_route` set to `true` it rewrites
//! `actors[0]` to `hijack` instead, a route change the node must reject. With
//! `payload.current` a number, it returns the route unchanged but for `current`, set
//! to that number (past the end of the route, it finishes the route).

use wasya_guest::{Guest, Level, Message, Outcome, Output, Route, Value, log, payload};

struct RouteActor;

impl Guest for RouteActor {
    fn handle(msg: Message) -> Outcome {
        let parsed = payload(&msg)?;
        let bad_route = parsed.get("bad_route").and_then(Value::as_bool) == Some(true);
        let mut actors = msg.route.actors;
        if let Some(current) = parsed.get("current").and_then(Value::as_u64) {
            log(
                Level::Debug,
                &format!("route handling message: setting current to {current}"),
            );
            return Ok(vec![Output {
                payload: msg.payload,
                route: Some(Route {
                    actors,
                    current: u32::try_from(current).unwrap_or(u32::MAX),
                    metadata: msg.route.metadata,
                }),
                headers: None,
            }]);
        }
        if bad_route {
            log(
                Level::Info,
                "route handling message: rewriting the route's start",
            );
            match actors.first_mut() {
                Some(first) => *first = "hijack".to_owned(),
                None => actors.push("hijack".to_owned()),
            }
        } else {
            let append = parsed
                .get("append")
                .and_then(Value::as_str)
                .unwrap_or("echo");
            log(
                Level::Debug,
                &format!("route handling message: appending {append}"),
            );
            actors.push(append.to_owned());
        }
        Ok(vec![Output {
            payload: msg.payload,
            route: Some(Route {
                actors,
                current: msg.route.current + 1,
                metadata: msg.route.metadata,
            }),
            headers: None,
        }])
    }
}

wasya_guest::export!(RouteActor);
