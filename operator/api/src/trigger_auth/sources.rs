//! Secret stores and token sources of a TriggerAuthentication: HashiCorp Vault, Azure Key Vault,
//! GCP Secret Manager, AWS Secrets Manager and OAuth2. Modelled field for field after upstream so
//! that any manifest KEDA accepts is accepted here, even though resolving them needs a cloud.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::AuthPodIdentity;
use crate::common::schema;
use crate::common::secret::SecretValue;

/// Parameters read from HashiCorp Vault.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HashiCorpVault {
    /// Address of the Vault server, e.g. `https://vault.example:8200`.
    pub address: String,

    /// How KEDA logs in to Vault.
    pub authentication: VaultAuthentication,

    /// The secrets to read, one parameter each. At least one.
    #[schemars(length(min = 1))]
    pub secrets: Vec<VaultSecret>,

    /// Vault Enterprise namespace. Default: the root namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,

    /// Credentials for the chosen authentication method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<VaultCredential>,

    /// The Vault role (kubernetes authentication).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,

    /// The auth mount, logged in at `auth/<mount>/login` (kubernetes authentication).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount: Option<String>,
}

/// Vault authentication methods.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum VaultAuthentication {
    // A static token from `credential.token`.
    #[default]
    Token,
    // Kubernetes auth with a ServiceAccount JWT.
    Kubernetes,
}

/// Vault credentials, depending on the authentication method.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultCredential {
    /// The Vault token (token authentication). Redacted in `Debug`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<SecretValue>,

    /// Path of a ServiceAccount token file (kubernetes authentication). Default: the operator's
    /// own token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,

    /// A ServiceAccount a bound token is minted for (kubernetes authentication), instead of
    /// `serviceAccount`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
}

/// One Vault secret mapped to one parameter.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultSecret {
    /// The scaler parameter to set.
    pub parameter: String,

    /// Path of the secret in Vault.
    pub path: String,

    /// Key within the secret's data.
    pub key: String,

    /// The kind of secret engine. Default "" (KV version detected from the answer).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub secret_type: Option<VaultSecretType>,

    /// Request data for a `pki` secret (a certificate is issued by a write to `path`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pki_data: Option<VaultPkiData>,
}

/// Vault secret engine kinds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum VaultSecretType {
    // Detect KV v1/v2 from the answer.
    #[default]
    #[serde(rename = "")]
    Generic,
    // KV version 2.
    #[serde(rename = "secretV2")]
    SecretV2,
    // KV version 1.
    #[serde(rename = "secret")]
    Secret,
    // The PKI engine.
    #[serde(rename = "pki")]
    Pki,
}

/// The certificate request of a Vault `pki` secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultPkiData {
    /// Common name of the certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_name: Option<String>,

    /// Subject alternative names, comma separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt_names: Option<String>,

    /// IP subject alternative names, comma separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_sans: Option<String>,

    /// URI subject alternative names, comma separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri_sans: Option<String>,

    /// Other subject alternative names, comma separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_sans: Option<String>,

    /// Requested time to live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,

    /// Format of the returned data (`pem`, `der`, `pem_bundle`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

/// Parameters read from Azure Key Vault.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureKeyVault {
    /// The vault's URI, e.g. `https://my-vault.vault.azure.net`.
    pub vault_uri: String,

    /// The secrets to read, one parameter each. At least one.
    #[schemars(length(min = 1))]
    pub secrets: Vec<AzureKeyVaultSecret>,

    /// Service principal credentials, when no pod identity is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<AzureKeyVaultCredentials>,

    /// The identity used to read the vault, instead of credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_identity: Option<AuthPodIdentity>,

    /// The Azure cloud the vault lives in. Default: the public cloud.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud: Option<AzureKeyVaultCloudInfo>,
}

/// Microsoft Entra service principal credentials that Azure scalers can share (KEDA v2.21+).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureServicePrincipal {
    /// The tenant id.
    pub tenant_id: String,

    /// The application's client id.
    pub client_id: String,

    /// The Azure cloud environment. Default: AzurePublicCloud.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud: Option<String>,

    /// Required when `cloud` is `Private`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_directory_endpoint: Option<String>,

    /// The Secret key holding the client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<ValueFromSecret>,

    /// The Secret key holding a client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<ValueFromSecret>,

    /// The Secret key holding the client certificate's password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate_password: Option<ValueFromSecret>,
}

/// An Azure AD application's credentials.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureKeyVaultCredentials {
    /// The application's client id.
    pub client_id: String,

    /// The tenant id.
    pub tenant_id: String,

    /// The Secret key holding the client secret.
    pub client_secret: ValueFromSecret,
}

/// One Key Vault secret mapped to one parameter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureKeyVaultSecret {
    /// The scaler parameter to set.
    pub parameter: String,

    /// Name of the Key Vault secret.
    pub name: String,

    /// Version of the secret. Default: the latest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// The Azure cloud of a Key Vault.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureKeyVaultCloudInfo {
    /// `AzurePublicCloud`, `AzureUSGovernmentCloud`, `AzureChinaCloud`, `AzureGermanCloud` or
    /// `Private`.
    #[serde(rename = "type")]
    pub cloud_type: String,

    /// Key Vault resource URL; required for `Private`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "keyVaultResourceURL")]
    pub key_vault_resource_url: Option<String>,

    /// Active Directory endpoint; required for `Private`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_directory_endpoint: Option<String>,
}

/// Parameters read from GCP Secret Manager.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GcpSecretManager {
    /// The secrets to read, one parameter each. At least one.
    #[schemars(length(min = 1))]
    pub secrets: Vec<GcpSecretManagerSecret>,

    /// Service account credentials (a JSON key in a Secret), when no pod identity is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<GcpCredentials>,

    /// The identity used to read the secrets, instead of credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_identity: Option<AuthPodIdentity>,
}

/// GCP service account credentials.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GcpCredentials {
    /// The Secret key holding the service account's JSON key.
    pub client_secret: ValueFromSecret,
}

/// One Secret Manager secret mapped to one parameter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GcpSecretManagerSecret {
    /// The scaler parameter to set.
    pub parameter: String,

    /// Id of the secret.
    pub id: String,

    /// Version of the secret. Default `latest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// Parameters read from AWS Secrets Manager.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsSecretManager {
    /// The secrets to read, one parameter each. At least one.
    #[schemars(length(min = 1))]
    pub secrets: Vec<AwsSecretManagerSecret>,

    /// Access keys, when no pod identity is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<AwsSecretManagerCredentials>,

    /// The identity used to read the secrets, instead of access keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_identity: Option<AuthPodIdentity>,

    /// The AWS region of the secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// AWS access keys, each from a Secret key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsSecretManagerCredentials {
    /// The access key id.
    pub access_key: ValueFromSecret,

    /// The secret access key.
    pub access_secret_key: ValueFromSecret,

    /// A session token, for temporary credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<ValueFromSecret>,
}

/// One Secrets Manager secret mapped to one parameter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsSecretManagerSecret {
    /// The scaler parameter to set.
    pub parameter: String,

    /// Name (or ARN) of the secret.
    pub name: String,

    /// Version id of the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,

    /// Version stage of the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_stage: Option<String>,

    /// With a JSON SecretString, the key whose value is taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<String>,
}

/// OAuth2 client-credentials settings; they become the scaler parameters `oauthTokenURI`,
/// `clientID`, `clientSecret`, `scopes` and `endpointParams`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = schema::require_oauth2_type)]
pub struct OAuth2 {
    /// The grant type. Default `clientCredentials` (set by the apiserver).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "clientCredentials"))]
    pub grant_type: Option<OAuth2GrantType>,

    /// The client id.
    pub client_id: String,

    /// The Secret key holding the client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<ValueFromSecret>,

    /// The token endpoint, an http(s) URL.
    pub token_url: String,

    /// Scopes requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,

    /// Extra parameters sent to the token endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url_params: Option<BTreeMap<String, String>>,
}

impl OAuth2 {
    /// Effective grant type.
    pub fn grant_type(&self) -> OAuth2GrantType {
        self.grant_type.unwrap_or_default()
    }
}

/// OAuth2 grant types.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum OAuth2GrantType {
    // The client credentials grant.
    #[default]
    ClientCredentials,
}

/// A value taken from a Secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValueFromSecret {
    /// Where the value is.
    pub value_from: SecretKeyRefSource,
}

/// The `valueFrom` of a [`ValueFromSecret`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRefSource {
    /// The Secret and key.
    pub secret_key_ref: SecretKeyRef,
}

/// A key of a Secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretKeyRef {
    /// Name of the Secret.
    pub name: String,
    /// Key within the Secret.
    pub key: String,
}
