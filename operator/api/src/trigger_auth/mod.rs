//! `TriggerAuthentication` (`ta`) and `ClusterTriggerAuthentication` (`cta`): where a trigger's
//! authentication parameters come from. Both kinds share one spec.

mod sources;

use std::borrow::Cow;

use kube::CustomResource;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

use crate::common::schema;

pub use sources::{
    AwsSecretManager, AwsSecretManagerCredentials, AwsSecretManagerSecret, AzureKeyVault,
    AzureKeyVaultCloudInfo, AzureKeyVaultCredentials, AzureKeyVaultSecret, AzureServicePrincipal,
    GcpCredentials, GcpSecretManager, GcpSecretManagerSecret, HashiCorpVault, OAuth2,
    OAuth2GrantType, SecretKeyRef, SecretKeyRefSource, ValueFromSecret, VaultAuthentication,
    VaultCredential, VaultPkiData, VaultSecret, VaultSecretType,
};

/// The sources of a trigger's authentication parameters. They are read in this order, a later
/// source overwriting a parameter of an earlier one: env, filePath (cluster kind only, exclusive),
/// configMapTargetRef, secretTargetRef, hashiCorpVault, azureKeyVault, gcpSecretManager,
/// awsSecretManager, boundServiceAccountToken, oauth2.
// kube's printcolumn(...) entries repeat `type_ = ...` by design; clippy reads them as
// duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, JsonSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "keda.sh",
    version = "v1alpha1",
    kind = "TriggerAuthentication",
    plural = "triggerauthentications",
    singular = "triggerauthentication",
    shortname = "ta",
    shortname = "triggerauth",
    namespaced,
    status = "TriggerAuthenticationStatus",
    derive = "PartialEq",
    schema = "manual",
    printcolumn(
        name = "PodIdentity",
        type_ = "string",
        json_path = ".spec.podIdentity.provider"
    ),
    printcolumn(
        name = "Secret",
        type_ = "string",
        json_path = ".spec.secretTargetRef[*].name"
    ),
    printcolumn(name = "Env", type_ = "string", json_path = ".spec.env[*].name"),
    printcolumn(
        name = "VaultAddress",
        type_ = "string",
        json_path = ".spec.hashiCorpVault.address"
    ),
    printcolumn(
        name = "ScaledObjects",
        type_ = "string",
        priority = 1,
        json_path = ".status.scaledobjects"
    ),
    printcolumn(
        name = "ScaledJobs",
        type_ = "string",
        priority = 1,
        json_path = ".status.scaledjobs"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct TriggerAuthenticationSpec {
    /// The platform identity the scaler uses (Azure workload identity, GCP, AWS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_identity: Option<AuthPodIdentity>,

    /// Parameters read from keys of Secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_target_ref: Option<Vec<AuthSecretTargetRef>>,

    /// Parameters read from keys of ConfigMaps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_target_ref: Option<Vec<AuthConfigMapTargetRef>>,

    /// Parameters read from environment variables of the scale target's containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<AuthEnvironment>>,

    /// A file, relative to the operator's `--filepath-auth-root-path`, holding the parameters as
    /// a JSON map of strings; when set it replaces every other source. ClusterTriggerAuthentication
    /// only: a TriggerAuthentication using it is an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_path: Option<String>,

    /// Parameters read from HashiCorp Vault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashi_corp_vault: Option<HashiCorpVault>,

    /// Parameters read from Azure Key Vault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_key_vault: Option<AzureKeyVault>,

    /// Microsoft Entra service principal credentials shared by Azure scalers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_service_principal: Option<AzureServicePrincipal>,

    /// Parameters read from GCP Secret Manager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcp_secret_manager: Option<GcpSecretManager>,

    /// Parameters read from AWS Secrets Manager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_secret_manager: Option<AwsSecretManager>,

    /// Parameters set to tokens minted for ServiceAccounts (TokenRequest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_service_account_token: Option<Vec<BoundServiceAccountToken>>,

    /// OAuth2 client-credentials settings handed to the scaler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2>,
}

/// The spec of a ClusterTriggerAuthentication: the same fields as a TriggerAuthentication's,
/// read in the operator's cluster-object namespace. It derefs to [`TriggerAuthenticationSpec`].
// kube's printcolumn(...) entries repeat `type_ = ...` by design; clippy reads them as
// duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, JsonSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "keda.sh",
    version = "v1alpha1",
    kind = "ClusterTriggerAuthentication",
    plural = "clustertriggerauthentications",
    singular = "clustertriggerauthentication",
    shortname = "cta",
    shortname = "clustertriggerauth",
    status = "TriggerAuthenticationStatus",
    derive = "PartialEq",
    schema = "manual",
    printcolumn(
        name = "PodIdentity",
        type_ = "string",
        json_path = ".spec.podIdentity.provider"
    ),
    printcolumn(
        name = "Secret",
        type_ = "string",
        json_path = ".spec.secretTargetRef[*].name"
    ),
    printcolumn(name = "Env", type_ = "string", json_path = ".spec.env[*].name"),
    printcolumn(name = "FilePath", type_ = "string", json_path = ".spec.filePath"),
    printcolumn(
        name = "VaultAddress",
        type_ = "string",
        json_path = ".spec.hashiCorpVault.address"
    ),
    printcolumn(
        name = "ScaledObjects",
        type_ = "string",
        priority = 1,
        json_path = ".status.scaledobjects"
    ),
    printcolumn(
        name = "ScaledJobs",
        type_ = "string",
        priority = 1,
        json_path = ".status.scaledjobs"
    )
)]
#[serde(transparent)]
#[schemars(transparent)]
pub struct ClusterTriggerAuthenticationSpec(pub TriggerAuthenticationSpec);

impl std::ops::Deref for ClusterTriggerAuthenticationSpec {
    type Target = TriggerAuthenticationSpec;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// Which ScaledObjects and ScaledJobs use the authentication (maintained by their reconcilers).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TriggerAuthenticationStatus {
    /// Comma-separated names of the ScaledObjects referencing this object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "scaledobjects")]
    pub scaled_objects: Option<String>,

    /// Comma-separated names of the ScaledJobs referencing this object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "scaledjobs")]
    pub scaled_jobs: Option<String>,
}

/// A platform identity for the scaler (or for a secret store).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthPodIdentity {
    /// The identity provider.
    pub provider: PodIdentityProvider,

    /// Azure: the client id of the workload identity to use instead of the default one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_id: Option<String>,

    /// Azure: overrides the tenant id; requires `identityId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_tenant_id: Option<String>,

    /// Azure: overrides the authority host; requires `identityTenantId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_authority_host: Option<String>,

    /// AWS: the role to assume. Mutually exclusive with `identityOwner: workload`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,

    /// AWS: the external id used when assuming `roleArn`; requires `roleArn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "externalID")]
    pub external_id: Option<String>,

    /// AWS: whose identity is used when no role is given, KEDA's or the scaled workload's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_owner: Option<IdentityOwner>,
}

/// Identity providers of `podIdentity.provider`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum PodIdentityProvider {
    // Azure AD workload identity.
    #[serde(rename = "azure-workload")]
    AzureWorkload,
    // GCP workload identity.
    #[serde(rename = "gcp")]
    Gcp,
    // AWS (IRSA / role assumption).
    #[serde(rename = "aws")]
    Aws,
    // AWS EKS role from the workload's ServiceAccount (deprecated).
    #[serde(rename = "aws-eks")]
    AwsEks,
    // No platform identity.
    #[default]
    #[serde(rename = "none")]
    None,
}

/// Owners of the AWS identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum IdentityOwner {
    // The KEDA operator's own identity.
    Keda,
    // The role of the scaled workload's ServiceAccount.
    Workload,
}

/// A parameter read from a key of a Secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AuthSecretTargetRef {
    /// The scaler parameter to set.
    pub parameter: String,
    /// Name of the Secret.
    pub name: String,
    /// Key within the Secret.
    pub key: String,
}

/// A parameter read from a key of a ConfigMap.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AuthConfigMapTargetRef {
    /// The scaler parameter to set.
    pub parameter: String,
    /// Name of the ConfigMap.
    pub name: String,
    /// Key within the ConfigMap.
    pub key: String,
}

/// A parameter read from an environment variable of the scale target's pod template.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthEnvironment {
    /// The scaler parameter to set.
    pub parameter: String,

    /// Name of the environment variable.
    pub name: String,

    /// The container to read it from. Default: the first container (not
    /// `envSourceContainerName`, as upstream's code does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
}

/// A parameter set to a token minted for a ServiceAccount.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BoundServiceAccountToken {
    /// The scaler parameter to set.
    pub parameter: String,
    /// The ServiceAccount, in the trigger's namespace, a token is requested for.
    pub service_account_name: String,
}

/// `openAPIV3Schema.description` of the TriggerAuthentication CRD.
const TRIGGER_AUTHENTICATION_DESCRIPTION: &str = "TriggerAuthentication defines how a trigger can authenticate, for triggers in its own namespace.";

impl JsonSchema for TriggerAuthentication {
    fn schema_name() -> Cow<'static, str> {
        "TriggerAuthentication".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schema::resource::<TriggerAuthenticationSpec, TriggerAuthenticationStatus>(
            TRIGGER_AUTHENTICATION_DESCRIPTION,
        )
    }
}

/// `openAPIV3Schema.description` of the ClusterTriggerAuthentication CRD.
const CLUSTER_TRIGGER_AUTHENTICATION_DESCRIPTION: &str = "ClusterTriggerAuthentication defines how a trigger can authenticate globally; its Secrets and ConfigMaps are read in the operator's cluster-object namespace.";

impl JsonSchema for ClusterTriggerAuthentication {
    fn schema_name() -> Cow<'static, str> {
        "ClusterTriggerAuthentication".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schema::resource::<ClusterTriggerAuthenticationSpec, TriggerAuthenticationStatus>(
            CLUSTER_TRIGGER_AUTHENTICATION_DESCRIPTION,
        )
    }
}
