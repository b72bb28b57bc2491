//! Black-box tests over HTTP: one binary, one module per feature.

mod backend_conformance;
mod backends;
mod bad_input;
mod browser;
mod captcha;
mod cli;
mod code_hold;
mod compat;
mod csrf;
mod failover;
mod faults;
mod hardening;
mod health;
mod helpers;
mod logs;
mod multi_instance;
mod operations;
mod readiness;
mod register;
mod sessions;
mod sms_codes;
mod sms_providers;
mod store;
mod users;
mod web;
mod webdriver;
