//! phoneauth: sign-up and sign-in with a mobile number — image captcha, SMS
//! code, password, sessions — wire-compatible with the classic Flask
//! tutorial backends.

pub mod app;
pub mod audit;
pub mod avatars;
pub mod budget;
pub mod captcha;
pub mod clock;
pub mod config;
pub mod defence;
pub mod deployment_secret;
pub mod domain;
pub mod flow;
pub mod http;
pub mod import;
pub mod limits;
pub mod meter;
pub mod passwords;
pub mod secret;
pub mod server;
pub mod sms;
pub mod store;
pub mod telemetry;
pub mod tokens;
pub mod users;
pub mod webhooks;

pub use app::{App, Overrides};
pub use config::Config;
