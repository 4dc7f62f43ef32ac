//! Who is calling. Tokens are JWTs carrying `sub`, `role` and scopes (areas, zones,
//! depot, or the retailer's own customer id). The middleware validates the token
//! and puts a [`Caller`] into the request; handlers decide what that caller may do.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::ServiceError;
use crate::settings::{AuthSettings, TokenAlgorithm};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    CustomerManager,
    CallCenterAgent,
    MarketInspector,
    Driver,
    Dispatcher,
    AllocationPlanner,
    Admin,
    Retailer,
    /// Another distnet service.
    Service,
}

impl Role {
    pub const ALL: [Role; 9] = [
        Role::CustomerManager,
        Role::CallCenterAgent,
        Role::MarketInspector,
        Role::Driver,
        Role::Dispatcher,
        Role::AllocationPlanner,
        Role::Admin,
        Role::Retailer,
        Role::Service,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::CustomerManager => "customer_manager",
            Role::CallCenterAgent => "call_center_agent",
            Role::MarketInspector => "market_inspector",
            Role::Driver => "driver",
            Role::Dispatcher => "dispatcher",
            Role::AllocationPlanner => "allocation_planner",
            Role::Admin => "admin",
            Role::Retailer => "retailer",
            Role::Service => "service",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role `{s}`"))
    }
}

/// The token's claims.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    pub exp: i64,
    #[serde(default)]
    pub iat: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub iss: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub areas: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depot: Option<String>,
    /// For a retailer: its own customer id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
}

impl Claims {
    /// Claims valid for `ttl` from now.
    pub fn new(sub: impl Into<String>, role: Role, ttl: std::time::Duration) -> Self {
        let now = chrono::Utc::now().timestamp();
        Self {
            sub: sub.into(),
            role,
            exp: now + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2),
            iat: now,
            iss: String::new(),
            areas: Vec::new(),
            zones: Vec::new(),
            depot: None,
            customer: None,
        }
    }

    pub fn with_areas<I: IntoIterator<Item = S>, S: Into<String>>(mut self, areas: I) -> Self {
        self.areas = areas.into_iter().map(Into::into).collect();
        self
    }

    pub fn with_customer(mut self, customer: impl Into<String>) -> Self {
        self.customer = Some(customer.into());
        self
    }
}

/// The authenticated caller, available to handlers through the request extensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub sub: String,
    pub role: Role,
    pub areas: Vec<String>,
    pub zones: Vec<String>,
    pub depot: Option<String>,
    pub customer: Option<String>,
    /// The W3C trace this call belongs to (32 hex digits), or empty; set by the
    /// middleware, written to the audit log.
    pub trace_id: String,
}

impl From<Claims> for Caller {
    fn from(claims: Claims) -> Self {
        Self {
            sub: claims.sub,
            role: claims.role,
            areas: claims.areas,
            zones: claims.zones,
            depot: claims.depot,
            customer: claims.customer,
            trace_id: String::new(),
        }
    }
}

impl Caller {
    /// The caller's role must be one of `allowed`.
    pub fn require(&self, allowed: &[Role]) -> Result<(), ServiceError> {
        if allowed.contains(&self.role) {
            Ok(())
        } else {
            Err(ServiceError::new(
                tonic::Code::PermissionDenied,
                "ROLE_NOT_ALLOWED",
                format!("role {} may not call this method", self.role),
            )
            .with_metadata("role", self.role.as_str()))
        }
    }

    pub fn has_area(&self, area_id: &str) -> bool {
        self.areas.iter().any(|a| a == area_id)
    }

    /// DESIGN.md "Who may do what" for facts about one retailer: admin, services,
    /// planners and dispatchers see every retailer; a customer manager those they own
    /// or in their areas; call-center agents and inspectors their areas; a retailer
    /// only itself; a driver none (drivers see their routes).
    pub fn sees_retailer(&self, customer_id: &str, area_id: &str, owner_id: Option<&str>) -> bool {
        match self.role {
            Role::Admin | Role::Service | Role::AllocationPlanner | Role::Dispatcher => true,
            Role::CustomerManager => owner_id == Some(self.sub.as_str()) || self.has_area(area_id),
            Role::CallCenterAgent | Role::MarketInspector => self.has_area(area_id),
            Role::Retailer => self.customer.as_deref() == Some(customer_id),
            Role::Driver => false,
        }
    }

    /// The key under which this caller's request ids are remembered.
    pub fn idempotency_scope(&self) -> String {
        format!("{}:{}", self.role, self.sub)
    }
}

/// The caller the middleware stored and the request's message, or
/// `UNAUTHENTICATED`. Taken out of the request, not cloned: a caller is an
/// allocation per field.
pub fn caller<T>(request: tonic::Request<T>) -> Result<(Caller, T), ServiceError> {
    let (_, mut extensions, message) = request.into_parts();
    let caller = extensions
        .remove::<Caller>()
        .ok_or_else(|| ServiceError::unauthenticated("no bearer token"))?;
    Ok((caller, message))
}

/// Validates bearer tokens.
#[derive(Clone)]
pub struct TokenVerifier {
    key: Arc<DecodingKey>,
    validation: Validation,
    verified: Arc<Verified>,
}

/// Tokens that passed verification, with their callers and expiry: a phone or a
/// service presents the same token on every call, and checking its signature and
/// parsing its claims again was a tenth of a cached `GetCustomer`'s server time. A
/// hit is still refused once the token expires; nothing but a valid signature ever
/// gets in.
struct Verified {
    tokens: Mutex<HashMap<Box<str>, (Caller, i64)>>,
}

/// Tokens remembered at most; when full the memory starts over.
const VERIFIED_TOKENS: usize = 10_000;

impl Verified {
    fn get(&self, token: &str, now: i64, leeway: i64) -> Option<Caller> {
        let tokens = self.tokens.lock().ok()?;
        let (caller, exp) = tokens.get(token)?;
        (now <= exp.saturating_add(leeway)).then(|| caller.clone())
    }

    fn put(&self, token: &str, caller: &Caller, exp: i64) {
        if let Ok(mut tokens) = self.tokens.lock() {
            if tokens.len() >= VERIFIED_TOKENS {
                tokens.clear();
            }
            tokens.insert(token.into(), (caller.clone(), exp));
        }
    }
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("algorithms", &self.validation.algorithms)
            .finish()
    }
}

impl TokenVerifier {
    pub fn from_settings(settings: &AuthSettings) -> anyhow::Result<Self> {
        let (algorithm, key) = match settings.algorithm {
            TokenAlgorithm::HS256 => {
                anyhow::ensure!(
                    !settings.hs256_secret.expose().is_empty(),
                    "auth.hs256_secret is empty"
                );
                (
                    Algorithm::HS256,
                    DecodingKey::from_secret(settings.hs256_secret.expose().as_bytes()),
                )
            }
            TokenAlgorithm::EdDSA => {
                let pem = std::fs::read(&settings.public_key_path)?;
                (Algorithm::EdDSA, DecodingKey::from_ed_pem(&pem)?)
            }
            TokenAlgorithm::RS256 => {
                let pem = std::fs::read(&settings.public_key_path)?;
                (Algorithm::RS256, DecodingKey::from_rsa_pem(&pem)?)
            }
        };
        // Only the configured algorithm is accepted: never `none`, never a switch
        // from an asymmetric key to HMAC.
        let mut validation = Validation::new(algorithm);
        validation.leeway = 30;
        validation.set_required_spec_claims(&["exp", "sub"]);
        if !settings.issuer.is_empty() {
            validation.set_issuer(&[settings.issuer.as_str()]);
        }
        Ok(Self {
            key: Arc::new(key),
            validation,
            verified: Arc::new(Verified {
                tokens: Mutex::new(HashMap::new()),
            }),
        })
    }

    pub fn verify(&self, token: &str) -> Result<Caller, ServiceError> {
        let now = chrono::Utc::now().timestamp();
        let leeway = i64::try_from(self.validation.leeway).unwrap_or(0);
        if let Some(caller) = self.verified.get(token, now, leeway) {
            return Ok(caller);
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| ServiceError::unauthenticated(format!("invalid token: {e}")))?;
        let exp = data.claims.exp;
        let caller = Caller::from(data.claims);
        self.verified.put(token, &caller, exp);
        Ok(caller)
    }

    /// Reads `authorization: Bearer <token>`.
    pub fn verify_header(&self, value: Option<&http::HeaderValue>) -> Result<Caller, ServiceError> {
        let value =
            value.ok_or_else(|| ServiceError::unauthenticated("missing authorization: Bearer <token>"))?;
        let text = value
            .to_str()
            .map_err(|_| ServiceError::unauthenticated("malformed authorization header"))?;
        let token = text
            .strip_prefix("Bearer ")
            .or_else(|| text.strip_prefix("bearer "))
            .ok_or_else(|| ServiceError::unauthenticated("authorization must be `Bearer <token>`"))?;
        self.verify(token.trim())
    }
}

/// Mints HS256 tokens: for `distnet token`, the dev runner and tests. Production
/// tokens come from the identity provider.
#[derive(Clone)]
pub struct TokenIssuer {
    key: EncodingKey,
}

/// The token a service presents to the others (event relay, `BatchGetCustomers`):
/// role `service`, subject its name, signed with the configured HS256 secret.
pub fn service_token(auth: &AuthSettings, service: &str) -> anyhow::Result<String> {
    let claims = Claims::new(
        service,
        Role::Service,
        std::time::Duration::from_secs(10 * 365 * 24 * 3600),
    );
    TokenIssuer::hs256(auth.hs256_secret.expose()).mint(&claims)
}

impl TokenIssuer {
    pub fn hs256(secret: &str) -> Self {
        Self {
            key: EncodingKey::from_secret(secret.as_bytes()),
        }
    }

    pub fn mint(&self, claims: &Claims) -> anyhow::Result<String> {
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &self.key,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::settings::Secret;

    fn settings(secret: &str) -> AuthSettings {
        AuthSettings {
            hs256_secret: Secret::new(secret),
            ..AuthSettings::default()
        }
    }

    #[test]
    fn a_minted_token_verifies_with_its_scopes() {
        let claims =
            Claims::new("cm-7", Role::CustomerManager, Duration::from_secs(60)).with_areas(["area-03"]);
        let token = TokenIssuer::hs256("s3cret").mint(&claims).expect("mint");
        let caller = TokenVerifier::from_settings(&settings("s3cret"))
            .expect("verifier")
            .verify(&token)
            .expect("verify");
        assert_eq!(caller.sub, "cm-7");
        assert_eq!(caller.role, Role::CustomerManager);
        assert!(caller.has_area("area-03"));
    }

    /// A throwaway Ed25519 key pair made for this test with `openssl genpkey`.
    const TEST_ED25519_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIMpcmwxwi9zd3F6TflKiA3xIjaWZmobWqmfLxISRaDId\n-----END PRIVATE KEY-----\n";
    const TEST_ED25519_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA0rELYYWGSQnSqh3fkgM5VGHwhHc/R+HVcgDa+BDFOIY=\n-----END PUBLIC KEY-----\n";

    #[test]
    fn production_eddsa_tokens_verify_with_the_public_key_and_hmac_ones_do_not() {
        let dir = std::env::temp_dir().join(format!("distnet-eddsa-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let public_key = dir.join("jwt.pub.pem");
        std::fs::write(&public_key, TEST_ED25519_PUBLIC).expect("write key");
        let settings = AuthSettings {
            algorithm: TokenAlgorithm::EdDSA,
            public_key_path: public_key.display().to_string(),
            ..AuthSettings::default()
        };
        let verifier = TokenVerifier::from_settings(&settings).expect("verifier");

        let claims = Claims::new("svc", Role::Service, Duration::from_secs(60));
        let key = EncodingKey::from_ed_pem(TEST_ED25519_PRIVATE.as_bytes()).expect("private key");
        let token = jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &key).expect("sign");
        assert_eq!(verifier.verify(&token).expect("valid").sub, "svc");

        // An HS256 token signed with the public key as the secret is the classic
        // algorithm-confusion attack.
        let forged = TokenIssuer::hs256(TEST_ED25519_PUBLIC)
            .mint(&claims)
            .expect("mint");
        assert!(verifier.verify(&forged).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn wrong_secret_expired_and_unsigned_tokens_are_refused() {
        let verifier = TokenVerifier::from_settings(&settings("right")).expect("verifier");
        let claims = Claims::new("a", Role::Admin, Duration::from_secs(60));
        let wrong = TokenIssuer::hs256("wrong").mint(&claims).expect("mint");
        assert!(verifier.verify(&wrong).is_err());

        let mut old = claims.clone();
        old.exp = chrono::Utc::now().timestamp() - 3600;
        let expired = TokenIssuer::hs256("right").mint(&old).expect("mint");
        assert!(verifier.verify(&expired).is_err());

        // alg: none, hand-made.
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = b64.encode(serde_json::to_vec(&claims).expect("json"));
        assert!(verifier.verify(&format!("{header}.{body}.")).is_err());
        assert!(verifier.verify("not-a-token").is_err());
    }

    #[test]
    fn a_remembered_token_still_expires_and_refusals_are_never_remembered() {
        let verifier = TokenVerifier::from_settings(&settings("right")).expect("verifier");
        // Valid for 10 more seconds, plus the 30 s leeway.
        let mut claims = Claims::new("a", Role::Admin, Duration::from_secs(60));
        claims.exp = chrono::Utc::now().timestamp() + 10;
        let token = TokenIssuer::hs256("right").mint(&claims).expect("mint");
        assert_eq!(verifier.verify(&token).expect("valid").sub, "a");
        assert_eq!(verifier.verify(&token).expect("remembered").sub, "a");
        let now = chrono::Utc::now().timestamp();
        assert!(verifier.verified.get(&token, now, 30).is_some());
        assert!(
            verifier.verified.get(&token, now + 41, 30).is_none(),
            "past exp + leeway a remembered token is checked again (and refused)"
        );

        let wrong = TokenIssuer::hs256("wrong").mint(&claims).expect("mint");
        assert!(verifier.verify(&wrong).is_err());
        assert!(verifier.verify(&wrong).is_err(), "a refusal is not remembered");
        assert!(verifier.verified.get(&wrong, now, 30).is_none());
    }
}
