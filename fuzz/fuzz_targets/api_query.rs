//! The AWS Query parser and the services behind it (Elastic Load Balancing v2, the EC2
//! subset, EC2 Auto Scaling): form-encoded bodies, signed, through the whole edge.
#![no_main]

use berth_fuzz::{api, assert_not_server_error};
use libfuzzer_sys::fuzz_target;

const SERVICES: &[&str] = &["elasticloadbalancing", "ec2", "autoscaling"];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let service = SERVICES[pick as usize % SERVICES.len()];
    let headers = vec![(
        "content-type".to_owned(),
        "application/x-www-form-urlencoded; charset=utf-8".to_owned(),
    )];
    let Some(answer) = api().signed(service, headers, body.to_vec()) else {
        return;
    };
    assert_not_server_error(service, &answer);
});
