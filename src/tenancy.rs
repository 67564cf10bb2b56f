//! Roles, permissions and the tenant context every request carries. The rules of who may do
//! what to which tenant live here, not in handlers.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    PlatformAdmin,
    AgencyAdmin,
    AgencyUser,
    ClientAdmin,
    ClientUser,
    ClientViewer,
}

/// Which level of the hierarchy a role belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Platform,
    Agency,
    Client,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::PlatformAdmin,
        Role::AgencyAdmin,
        Role::AgencyUser,
        Role::ClientAdmin,
        Role::ClientUser,
        Role::ClientViewer,
    ];

    pub fn parse(s: &str) -> Option<Role> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::PlatformAdmin => "platform_admin",
            Role::AgencyAdmin => "agency_admin",
            Role::AgencyUser => "agency_user",
            Role::ClientAdmin => "client_admin",
            Role::ClientUser => "client_user",
            Role::ClientViewer => "client_viewer",
        }
    }

    pub fn level(self) -> Level {
        match self {
            Role::PlatformAdmin => Level::Platform,
            Role::AgencyAdmin | Role::AgencyUser => Level::Agency,
            Role::ClientAdmin | Role::ClientUser | Role::ClientViewer => Level::Client,
        }
    }

    /// A total order of authority, used for "nobody grants above their own role".
    pub fn rank(self) -> u8 {
        match self {
            Role::PlatformAdmin => 100,
            Role::AgencyAdmin => 80,
            Role::AgencyUser => 60,
            Role::ClientAdmin => 50,
            Role::ClientUser => 30,
            Role::ClientViewer => 10,
        }
    }

    pub fn permissions(self) -> &'static [Permission] {
        use Permission::*;
        match self {
            Role::PlatformAdmin => Permission::ALL,
            Role::AgencyAdmin => &[
                AgenciesRead,
                AgenciesWrite,
                ClientsRead,
                ClientsCreate,
                ClientsWrite,
                ClientsManage,
                UsersRead,
                UsersManage,
                DomainsRead,
                DomainsManage,
                SettingsRead,
                SettingsWrite,
                FilesRead,
                FilesWrite,
                BrandingRead,
                BrandingWrite,
                ContactsRead,
                ContactsWrite,
                AuditRead,
            ],
            Role::AgencyUser => &[
                AgenciesRead,
                ClientsRead,
                UsersRead,
                DomainsRead,
                FilesRead,
                FilesWrite,
                BrandingRead,
                ContactsRead,
                ContactsWrite,
            ],
            Role::ClientAdmin => &[
                ClientsRead,
                ClientsWrite,
                UsersRead,
                UsersManage,
                DomainsRead,
                DomainsManage,
                SettingsRead,
                SettingsWrite,
                FilesRead,
                FilesWrite,
                BrandingRead,
                BrandingWrite,
                ContactsRead,
                ContactsWrite,
                AuditRead,
            ],
            Role::ClientUser => &[ClientsRead, FilesRead, FilesWrite, BrandingRead, ContactsRead, ContactsWrite],
            Role::ClientViewer => &[ClientsRead, FilesRead, BrandingRead, ContactsRead],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash, PartialOrd, Ord)]
pub enum Permission {
    #[serde(rename = "platform:admin")]
    PlatformAdmin,
    #[serde(rename = "agencies:create")]
    AgenciesCreate,
    #[serde(rename = "agencies:read")]
    AgenciesRead,
    #[serde(rename = "agencies:write")]
    AgenciesWrite,
    #[serde(rename = "clients:read")]
    ClientsRead,
    #[serde(rename = "clients:create")]
    ClientsCreate,
    #[serde(rename = "clients:write")]
    ClientsWrite,
    /// Status, plan and test mode: the agency's levers, not the client's.
    #[serde(rename = "clients:manage")]
    ClientsManage,
    #[serde(rename = "users:read")]
    UsersRead,
    #[serde(rename = "users:manage")]
    UsersManage,
    #[serde(rename = "domains:read")]
    DomainsRead,
    #[serde(rename = "domains:manage")]
    DomainsManage,
    #[serde(rename = "settings:read")]
    SettingsRead,
    #[serde(rename = "settings:write")]
    SettingsWrite,
    #[serde(rename = "files:read")]
    FilesRead,
    #[serde(rename = "files:write")]
    FilesWrite,
    #[serde(rename = "branding:read")]
    BrandingRead,
    #[serde(rename = "branding:write")]
    BrandingWrite,
    #[serde(rename = "contacts:read")]
    ContactsRead,
    #[serde(rename = "contacts:write")]
    ContactsWrite,
    #[serde(rename = "audit:read")]
    AuditRead,
}

impl Permission {
    pub const ALL: &'static [Permission] = &[
        Permission::PlatformAdmin,
        Permission::AgenciesCreate,
        Permission::AgenciesRead,
        Permission::AgenciesWrite,
        Permission::ClientsRead,
        Permission::ClientsCreate,
        Permission::ClientsWrite,
        Permission::ClientsManage,
        Permission::UsersRead,
        Permission::UsersManage,
        Permission::DomainsRead,
        Permission::DomainsManage,
        Permission::SettingsRead,
        Permission::SettingsWrite,
        Permission::FilesRead,
        Permission::FilesWrite,
        Permission::BrandingRead,
        Permission::BrandingWrite,
        Permission::ContactsRead,
        Permission::ContactsWrite,
        Permission::AuditRead,
    ];

    pub fn as_str(self) -> &'static str {
        // Mirrors the serde renames above; a unit test keeps the two in step.
        match self {
            Permission::PlatformAdmin => "platform:admin",
            Permission::AgenciesCreate => "agencies:create",
            Permission::AgenciesRead => "agencies:read",
            Permission::AgenciesWrite => "agencies:write",
            Permission::ClientsRead => "clients:read",
            Permission::ClientsCreate => "clients:create",
            Permission::ClientsWrite => "clients:write",
            Permission::ClientsManage => "clients:manage",
            Permission::UsersRead => "users:read",
            Permission::UsersManage => "users:manage",
            Permission::DomainsRead => "domains:read",
            Permission::DomainsManage => "domains:manage",
            Permission::SettingsRead => "settings:read",
            Permission::SettingsWrite => "settings:write",
            Permission::FilesRead => "files:read",
            Permission::FilesWrite => "files:write",
            Permission::BrandingRead => "branding:read",
            Permission::BrandingWrite => "branding:write",
            Permission::ContactsRead => "contacts:read",
            Permission::ContactsWrite => "contacts:write",
            Permission::AuditRead => "audit:read",
        }
    }

    pub fn parse(s: &str) -> Option<Permission> {
        Self::ALL.iter().copied().find(|p| p.as_str() == s)
    }
}

/// The tenant a session is acting in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Scope {
    Platform,
    Agency { agency_id: String },
    Client { client_id: String, agency_id: String },
}

/// An authenticated caller, with authority loaded fresh from the database for this request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: String,
    pub email: String,
    pub role: Role,
    pub scope: Scope,
    pub permissions: Vec<Permission>,
}

impl Principal {
    pub fn can(&self, p: Permission) -> bool {
        self.permissions.contains(&p)
    }

    pub fn is_platform_admin(&self) -> bool {
        self.role == Role::PlatformAdmin
    }

    /// Whether this caller's scope reaches a client owned by `agency_id`.
    pub fn reaches_client(&self, client_id: &str, agency_id: &str) -> bool {
        match &self.scope {
            Scope::Platform => true,
            Scope::Agency { agency_id: a } => a == agency_id,
            Scope::Client { client_id: c, .. } => c == client_id,
        }
    }

    pub fn reaches_agency(&self, agency_id: &str) -> bool {
        match &self.scope {
            Scope::Platform => true,
            Scope::Agency { agency_id: a } => a == agency_id,
            Scope::Client { .. } => false,
        }
    }

    /// The id audit rows and quotas are filed under.
    pub fn tenant_id(&self) -> &str {
        match &self.scope {
            Scope::Platform => "platform",
            Scope::Agency { agency_id } => agency_id,
            Scope::Client { client_id, .. } => client_id,
        }
    }
}

/// A role's permissions, narrowed by an optional per-membership list. Unknown names in the
/// narrowing list are ignored, so narrowing can only remove.
pub fn effective_permissions(role: Role, narrowing: Option<&str>) -> Vec<Permission> {
    let base = role.permissions();
    let Some(json) = narrowing else {
        return base.to_vec();
    };
    let Ok(names) = serde_json::from_str::<Vec<String>>(json) else {
        return base.to_vec();
    };
    base.iter().copied().filter(|p| names.iter().any(|n| n == p.as_str())).collect()
}

/// May `granter` give `role` to someone? Never above their own rank, and only roles their
/// level administers.
pub fn may_grant(granter: Role, role: Role) -> bool {
    if role.rank() > granter.rank() {
        return false;
    }
    match granter.level() {
        Level::Platform => true,
        Level::Agency => granter == Role::AgencyAdmin && role != Role::PlatformAdmin,
        Level::Client => granter == Role::ClientAdmin && role.level() == Level::Client,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_role_can_grant_above_itself() {
        for g in Role::ALL {
            for r in Role::ALL {
                if may_grant(g, r) {
                    assert!(r.rank() <= g.rank(), "{g:?} may grant {r:?}");
                }
            }
        }
        assert!(!may_grant(Role::ClientAdmin, Role::AgencyUser));
        assert!(!may_grant(Role::AgencyAdmin, Role::PlatformAdmin));
        assert!(!may_grant(Role::ClientUser, Role::ClientViewer));
        assert!(may_grant(Role::AgencyAdmin, Role::ClientAdmin));
    }

    #[test]
    fn narrowing_only_removes_permissions() {
        let narrowed = effective_permissions(Role::ClientUser, Some(r#"["contacts:read","settings:write"]"#));
        assert_eq!(narrowed, vec![Permission::ContactsRead]);
        assert_eq!(effective_permissions(Role::ClientUser, None), Role::ClientUser.permissions());
    }

    #[test]
    fn permission_names_round_trip_through_serde() {
        for p in Permission::ALL {
            assert_eq!(serde_json::to_value(p).unwrap(), serde_json::json!(p.as_str()));
            assert_eq!(Permission::parse(p.as_str()), Some(*p));
        }
    }
}
