//! Policy parsing: any bytes given as a policy file are either a policy or one `PolicyError`,
//! never a panic. A policy that parses must also turn into the kernel's configuration, and
//! that configuration must survive the trip through `CLOISTER_RT_CONFIG`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The launcher reads a policy file as UTF-8 text; other bytes never reach the parser.
    let Ok(text) = std::str::from_utf8(data) else { return };
    match policies::parse(text, "fuzz.json") {
        Ok(policy) => {
            let mut config = kernel_host::Config::default();
            policy.apply_to(&mut config);
            let encoded = config.encode();
            let decoded =
                kernel_host::Config::decode(&encoded).expect("a config the launcher encodes decodes");
            assert_eq!(decoded.encode(), encoded, "the runtime's config must round-trip");
        }
        Err(e) => {
            // The message is what the user sees: one line.
            let line = e.to_string();
            assert!(!line.is_empty() && !line.contains('\n'), "a policy error is one line: {line:?}");
        }
    }
});
