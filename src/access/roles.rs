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

impl Level {
    /// Higher is closer to the platform.
    pub fn height(self) -> u8 {
        match self {
            Level::Platform => 3,
            Level::Agency => 2,
            Level::Client => 1,
        }
    }
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
                DealsRead,
                DealsWrite,
                BookingRead,
                BookingWrite,
                WebhooksManage,
                ApiKeysManage,
                AuditRead,
                DataExport,
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
                DealsRead,
                DealsWrite,
                BookingRead,
                BookingWrite,
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
                DealsRead,
                DealsWrite,
                BookingRead,
                BookingWrite,
                WebhooksManage,
                ApiKeysManage,
                AuditRead,
                DataExport,
            ],
            Role::ClientUser => &[
                ClientsRead,
                FilesRead,
                FilesWrite,
                BrandingRead,
                ContactsRead,
                ContactsWrite,
                DealsRead,
                DealsWrite,
                BookingRead,
                BookingWrite,
            ],
            Role::ClientViewer => &[ClientsRead, FilesRead, BrandingRead, ContactsRead, DealsRead, BookingRead],
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
    /// Pipelines, their stages, deals and deal notes.
    #[serde(rename = "deals:read")]
    DealsRead,
    #[serde(rename = "deals:write")]
    DealsWrite,
    /// Services, staff, hours, time off, appointments and availability.
    #[serde(rename = "booking:read")]
    BookingRead,
    #[serde(rename = "booking:write")]
    BookingWrite,
    /// Webhook endpoints, their secrets, the delivery log and replays, and the event log.
    #[serde(rename = "webhooks:manage")]
    WebhooksManage,
    /// API keys for the tenant's integrations.
    #[serde(rename = "api_keys:manage")]
    ApiKeysManage,
    #[serde(rename = "audit:read")]
    AuditRead,
    /// Exporting every row and file of a client (its data, for portability or before leaving).
    #[serde(rename = "data:export")]
    DataExport,
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
        Permission::DealsRead,
        Permission::DealsWrite,
        Permission::BookingRead,
        Permission::BookingWrite,
        Permission::WebhooksManage,
        Permission::ApiKeysManage,
        Permission::AuditRead,
        Permission::DataExport,
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
            Permission::DealsRead => "deals:read",
            Permission::DealsWrite => "deals:write",
            Permission::BookingRead => "booking:read",
            Permission::BookingWrite => "booking:write",
            Permission::WebhooksManage => "webhooks:manage",
            Permission::ApiKeysManage => "api_keys:manage",
            Permission::AuditRead => "audit:read",
            Permission::DataExport => "data:export",
        }
    }

    pub fn parse(s: &str) -> Option<Permission> {
        Self::ALL.iter().copied().find(|p| p.as_str() == s)
    }

    /// Whether the permission makes sense inside one client. Staff who sign in on a client
    /// portal keep only these, whatever their role holds elsewhere.
    pub fn is_client_scoped(self) -> bool {
        use Permission::*;
        !matches!(self, PlatformAdmin | AgenciesCreate | AgenciesRead | AgenciesWrite | ClientsCreate)
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
    /// Staff acting in a tenant they are not a member of: platform admins, and agency or
    /// platform staff signed in on a client's portal. Every such access is audited.
    pub staff: bool,
    /// The client row the authority was loaded with (a client member's own client, or the
    /// portal's), read in the same query, so `access::reach_client` need not read it again.
    pub home_client: Option<Box<super::store::ClientRow>>,
    /// An API key rather than a person: `user_id` is then the key's id, which the audit log records.
    pub api_key: bool,
    /// The user's session version: an access token is valid only while its `ver` equals it.
    pub token_version: i64,
}

/// Why a membership change is refused. Each is a 403 with its own code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantRefusal {
    /// Nobody changes their own membership.
    OwnMembership,
    /// The role ranks above the granter's, or the granter's level does not administer it.
    RoleTooHigh,
    /// The grant would hand out permissions the granter does not hold.
    ExceedsOwn(Vec<Permission>),
    /// The target user's current membership holds more than the granter does.
    TargetOutranks,
}

impl Principal {
    pub fn can(&self, p: Permission) -> bool {
        self.permissions.contains(&p)
    }

    /// A platform admin acting platform-wide. A platform admin signed in on a client portal is
    /// confined to that client and is not one here.
    pub fn is_platform_admin(&self) -> bool {
        self.role == Role::PlatformAdmin && self.scope == Scope::Platform
    }

    /// The permissions in `wanted` this caller does not hold, in `Permission::ALL` order.
    pub fn lacks(&self, wanted: &[Permission]) -> Vec<Permission> {
        Permission::ALL.iter().copied().filter(|p| wanted.contains(p) && !self.can(*p)).collect()
    }

    /// May this caller give `user_id` a membership of `role` holding exactly `granted`, replacing
    /// `existing` (the target's current role and permissions in that tenant, if any)? A caller
    /// grants only a subset of their own effective permissions, never a role above their own,
    /// never touches a membership that holds more than they do, and never changes their own.
    pub fn may_grant(
        &self,
        user_id: &str,
        role: Role,
        granted: &[Permission],
        existing: Option<(Role, &[Permission])>,
    ) -> Result<(), GrantRefusal> {
        if user_id == self.user_id {
            return Err(GrantRefusal::OwnMembership);
        }
        if !may_grant(self.role, role) {
            return Err(GrantRefusal::RoleTooHigh);
        }
        let missing = self.lacks(granted);
        if !missing.is_empty() {
            return Err(GrantRefusal::ExceedsOwn(missing));
        }
        if let Some((r, perms)) = existing {
            if r.rank() > self.role.rank() || !self.lacks(perms).is_empty() {
                return Err(GrantRefusal::TargetOutranks);
            }
        }
        Ok(())
    }

    /// May this caller remove `user_id`'s membership of `role` holding `perms`? The same rules
    /// as replacing it.
    pub fn may_revoke(&self, user_id: &str, role: Role, perms: &[Permission]) -> Result<(), GrantRefusal> {
        if user_id == self.user_id {
            return Err(GrantRefusal::OwnMembership);
        }
        if !may_grant(self.role, role) {
            return Err(GrantRefusal::RoleTooHigh);
        }
        if !self.lacks(perms).is_empty() {
            return Err(GrantRefusal::TargetOutranks);
        }
        Ok(())
    }

    /// This caller, confined to one client: what staff become when they sign in on its portal.
    /// Scope narrows to the client and permissions to those that make sense inside it.
    pub fn confined_to(&self, client_id: &str, agency_id: &str) -> Principal {
        let member = matches!(&self.scope, Scope::Client { client_id: c, .. } if c == client_id);
        Principal {
            user_id: self.user_id.clone(),
            email: self.email.clone(),
            role: self.role,
            scope: Scope::Client { client_id: client_id.into(), agency_id: agency_id.into() },
            permissions: self.permissions.iter().copied().filter(|p| p.is_client_scoped()).collect(),
            staff: !member,
            home_client: None,
            api_key: self.api_key,
            token_version: self.token_version,
        }
    }

    /// This caller, confined to one agency: what platform staff become on an agency's portal
    /// (an agency member stays as they are). The platform's own permissions stay behind.
    pub fn confined_to_agency(&self, agency_id: &str) -> Principal {
        let member = matches!(&self.scope, Scope::Agency { agency_id: a } if a == agency_id);
        let mut p = self.clone();
        if !member {
            p.scope = Scope::Agency { agency_id: agency_id.into() };
            p.permissions.retain(|p| !matches!(p, Permission::PlatformAdmin | Permission::AgenciesCreate));
            p.staff = true;
            p.home_client = None;
        }
        p
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

/// Whether an audit row's IP and user agent may be shown to `viewer`: only for actors at or below
/// the viewer's own level. Staff network details never reach a view below the staff's level.
/// Rows by no role (system jobs, anonymous failures) carry no person's network details.
pub fn shows_network(viewer: &Principal, actor_role: Option<&str>) -> bool {
    match actor_role.and_then(Role::parse) {
        Some(actor) => actor.level().height() <= viewer.role.level().height(),
        None => true,
    }
}

/// A stored narrowing list that is not a JSON array of strings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the membership's permission list is unreadable")]
pub struct UnreadableNarrowing;

/// A role's permissions, narrowed by an optional per-membership list. Unknown names in the
/// narrowing list are ignored, so narrowing can only remove. An unreadable list fails closed:
/// the caller grants nothing and logs the error.
pub fn effective_permissions(role: Role, narrowing: Option<&str>) -> Result<Vec<Permission>, UnreadableNarrowing> {
    let base = role.permissions();
    let Some(json) = narrowing else {
        return Ok(base.to_vec());
    };
    let names =
        crate::platform::body::parse::<Vec<String>>(json.as_bytes(), "permissions").map_err(|_| UnreadableNarrowing)?;
    Ok(base.iter().copied().filter(|p| names.iter().any(|n| n == p.as_str())).collect())
}

/// The permissions a grant hands out: the named subset of the role's set, or the role's whole
/// set when no list is given. A name that is unknown or outside the role is an error.
pub fn granted_permissions(role: Role, list: Option<&[String]>) -> Result<Vec<Permission>, String> {
    let Some(list) = list else {
        return Ok(role.permissions().to_vec());
    };
    let mut out = Vec::new();
    for name in list {
        match Permission::parse(name).filter(|p| role.permissions().contains(p)) {
            Some(p) if !out.contains(&p) => out.push(p),
            Some(_) => {}
            None => return Err(name.clone()),
        }
    }
    Ok(out)
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
    use Role::*;

    fn principal(role: Role, scope: Scope, narrowing: Option<&str>) -> Principal {
        Principal {
            user_id: "usr_me".into(),
            email: "me@example.test".into(),
            role,
            staff: scope == Scope::Platform,
            scope,
            permissions: effective_permissions(role, narrowing).unwrap(),
            home_client: None,
            api_key: false,
            token_version: 0,
        }
    }

    fn agency(a: &str) -> Scope {
        Scope::Agency { agency_id: a.into() }
    }

    fn client(c: &str, a: &str) -> Scope {
        Scope::Client { client_id: c.into(), agency_id: a.into() }
    }

    fn of_role(role: Role) -> Principal {
        let scope = match role.level() {
            Level::Platform => Scope::Platform,
            Level::Agency => agency("agy_a"),
            Level::Client => client("cli_a1", "agy_a"),
        };
        principal(role, scope, None)
    }

    #[test]
    fn ranks_order_the_roles_strictly() {
        let ranks: Vec<u8> = Role::ALL.iter().map(|r| r.rank()).collect();
        assert_eq!(ranks, vec![100, 80, 60, 50, 30, 10]);
        assert!(ranks.windows(2).all(|w| w[0] > w[1]), "{ranks:?}");
    }

    /// Granter × role: who may hand out which role, spelled out in full.
    #[test]
    fn the_grant_table() {
        let table: [(Role, [bool; 6]); 6] = [
            //               PA     AA     AU     CA     CU     CV
            (PlatformAdmin, [true, true, true, true, true, true]),
            (AgencyAdmin, [false, true, true, true, true, true]),
            (AgencyUser, [false, false, false, false, false, false]),
            (ClientAdmin, [false, false, false, true, true, true]),
            (ClientUser, [false, false, false, false, false, false]),
            (ClientViewer, [false, false, false, false, false, false]),
        ];
        for (granter, row) in table {
            for (role, want) in Role::ALL.into_iter().zip(row) {
                assert_eq!(may_grant(granter, role), want, "{granter:?} granting {role:?}");
            }
        }
    }

    /// Role × permission: the sets that matter most, checked both ways.
    #[test]
    fn the_permission_table() {
        use Permission::*;
        let cases: &[(Role, Permission, bool)] = &[
            (Role::PlatformAdmin, Permission::PlatformAdmin, true),
            (AgencyAdmin, Permission::PlatformAdmin, false),
            (AgencyAdmin, AgenciesCreate, false),
            (AgencyAdmin, ClientsManage, true),
            (AgencyAdmin, SettingsWrite, true),
            (AgencyUser, SettingsRead, false),
            (AgencyUser, ContactsWrite, true),
            (AgencyUser, UsersManage, false),
            (ClientAdmin, ClientsManage, false),
            (ClientAdmin, SettingsRead, true),
            (ClientAdmin, AuditRead, true),
            (ClientAdmin, DataExport, true),
            (AgencyUser, DataExport, false),
            (ClientUser, DataExport, false),
            (ClientUser, FilesWrite, true),
            (ClientUser, BrandingWrite, false),
            (ClientUser, SettingsRead, false),
            (ClientViewer, ContactsWrite, false),
            (ClientViewer, ContactsRead, true),
            (ClientViewer, FilesWrite, false),
        ];
        for (role, perm, want) in cases {
            assert_eq!(of_role(*role).can(*perm), *want, "{role:?} {perm:?}");
        }
        assert_eq!(Role::PlatformAdmin.permissions(), Permission::ALL);
        for r in [ClientAdmin, ClientUser, ClientViewer, AgencyUser] {
            assert!(r.permissions().iter().all(|p| AgencyAdmin.permissions().contains(p)), "{r:?} ⊄ agency_admin");
        }
        for r in [ClientUser, ClientViewer] {
            assert!(r.permissions().iter().all(|p| ClientAdmin.permissions().contains(p)), "{r:?} ⊄ client_admin");
        }
    }

    /// Role × target: which clients and agencies a scope reaches.
    #[test]
    fn the_reach_table() {
        let cases: &[(Scope, &str, &str, bool, bool)] = &[
            // scope, client, its agency, reaches client, reaches that agency
            (Scope::Platform, "cli_b1", "agy_b", true, true),
            (agency("agy_a"), "cli_a1", "agy_a", true, true),
            (agency("agy_a"), "cli_a2", "agy_a", true, true),
            (agency("agy_a"), "cli_b1", "agy_b", false, false),
            (client("cli_a1", "agy_a"), "cli_a1", "agy_a", true, false),
            (client("cli_a1", "agy_a"), "cli_a2", "agy_a", false, false),
            (client("cli_a1", "agy_a"), "cli_b1", "agy_b", false, false),
        ];
        for (scope, c, a, want_client, want_agency) in cases {
            let p = principal(ClientViewer, scope.clone(), None);
            assert_eq!(p.reaches_client(c, a), *want_client, "{scope:?} → {c}");
            assert_eq!(p.reaches_agency(a), *want_agency, "{scope:?} → {a}");
        }
    }

    #[test]
    fn only_a_platform_wide_platform_admin_is_one() {
        assert!(of_role(PlatformAdmin).is_platform_admin());
        for r in [AgencyAdmin, AgencyUser, ClientAdmin, ClientUser, ClientViewer] {
            assert!(!of_role(r).is_platform_admin(), "{r:?}");
        }
        let confined = of_role(PlatformAdmin).confined_to("cli_a1", "agy_a");
        assert!(!confined.is_platform_admin());
        assert!(confined.staff);
        assert!(!confined.can(Permission::PlatformAdmin) && !confined.can(Permission::AgenciesCreate));
        assert!(confined.can(Permission::SettingsWrite) && confined.can(Permission::ClientsManage));
        let scoped: Vec<Permission> = Permission::ALL.iter().copied().filter(|p| p.is_client_scoped()).collect();
        assert_eq!(confined.permissions, scoped, "a platform admin keeps every client-level permission");
        assert!(ClientAdmin.permissions().iter().all(|p| p.is_client_scoped()));
        assert!(!confined.reaches_client("cli_a2", "agy_a"));
        assert_eq!(confined.tenant_id(), "cli_a1");
        let member = of_role(ClientAdmin).confined_to("cli_a1", "agy_a");
        assert!(!member.staff, "a member on their own portal is not staff");
        assert_eq!(member.permissions, of_role(ClientAdmin).permissions);
    }

    #[test]
    fn a_caller_grants_only_what_they_hold() {
        let narrowed = principal(AgencyAdmin, agency("agy_a"), Some(r#"["users:manage","users:read","clients:read"]"#));
        let full = ClientAdmin.permissions();
        assert_eq!(
            narrowed.may_grant("usr_x", ClientAdmin, full, None),
            Err(GrantRefusal::ExceedsOwn(narrowed.lacks(full)))
        );
        assert!(narrowed.lacks(full).contains(&Permission::SettingsRead));
        let small = [Permission::ClientsRead, Permission::UsersRead];
        assert_eq!(narrowed.may_grant("usr_x", ClientAdmin, &small, None), Ok(()));
        assert_eq!(of_role(AgencyAdmin).may_grant("usr_x", ClientAdmin, full, None), Ok(()));
    }

    #[test]
    fn nobody_changes_their_own_membership() {
        let p = of_role(PlatformAdmin);
        assert_eq!(p.may_grant("usr_me", ClientViewer, &[], None), Err(GrantRefusal::OwnMembership));
        assert_eq!(p.may_revoke("usr_me", ClientViewer, &[]), Err(GrantRefusal::OwnMembership));
        assert_eq!(p.may_revoke("usr_x", ClientViewer, &[]), Ok(()));
    }

    #[test]
    fn roles_above_the_granter_and_targets_holding_more_are_refused() {
        let ca = of_role(ClientAdmin);
        assert_eq!(ca.may_grant("usr_x", AgencyUser, &[], None), Err(GrantRefusal::RoleTooHigh));
        assert_eq!(
            ca.may_grant("usr_x", ClientViewer, &[], Some((AgencyAdmin, &[]))),
            Err(GrantRefusal::TargetOutranks)
        );
        let narrowed = principal(ClientAdmin, client("cli_a1", "agy_a"), Some(r#"["users:manage","users:read"]"#));
        let full = ClientAdmin.permissions();
        assert_eq!(
            narrowed.may_grant("usr_x", ClientViewer, &[], Some((ClientAdmin, full))),
            Err(GrantRefusal::TargetOutranks),
            "a narrowed admin cannot demote a full one"
        );
        assert_eq!(narrowed.may_revoke("usr_x", ClientAdmin, full), Err(GrantRefusal::TargetOutranks));
        assert_eq!(narrowed.may_revoke("usr_x", AgencyUser, &[]), Err(GrantRefusal::RoleTooHigh));
        assert_eq!(ca.may_grant("usr_x", ClientViewer, &[], Some((ClientUser, ClientUser.permissions()))), Ok(()));
        assert_eq!(ca.may_revoke("usr_x", ClientUser, ClientUser.permissions()), Ok(()));
        // An equal who holds no more than the caller may be changed.
        let peer = Some((ClientAdmin, ClientAdmin.permissions()));
        assert_eq!(ca.may_grant("usr_x", ClientUser, ClientUser.permissions(), peer), Ok(()));
        assert_eq!(ca.may_revoke("usr_x", ClientAdmin, ClientAdmin.permissions()), Ok(()));
    }

    #[test]
    fn narrowing_only_removes_permissions() {
        let narrowed = effective_permissions(ClientUser, Some(r#"["contacts:read","settings:write"]"#)).unwrap();
        assert_eq!(narrowed, vec![Permission::ContactsRead]);
        assert_eq!(effective_permissions(ClientUser, None).unwrap(), ClientUser.permissions());
        assert_eq!(effective_permissions(ClientUser, Some("[]")).unwrap(), vec![]);
    }

    #[test]
    fn an_unreadable_narrowing_list_fails_closed() {
        for bad in ["", "not json", r#"{"contacts:read":true}"#, r#"[1,2]"#, r#""contacts:read""#] {
            assert_eq!(effective_permissions(ClientAdmin, Some(bad)), Err(UnreadableNarrowing), "{bad:?}");
        }
    }

    #[test]
    fn granted_permissions_are_the_list_or_the_whole_role() {
        assert_eq!(granted_permissions(ClientUser, None).unwrap(), ClientUser.permissions());
        let list = vec!["contacts:read".to_string(), "contacts:read".to_string()];
        assert_eq!(granted_permissions(ClientUser, Some(&list)).unwrap(), vec![Permission::ContactsRead]);
        let outside = vec!["settings:read".to_string()];
        assert_eq!(granted_permissions(ClientUser, Some(&outside)), Err("settings:read".to_string()));
        let unknown = vec!["root".to_string()];
        assert!(granted_permissions(ClientAdmin, Some(&unknown)).is_err());
    }

    #[test]
    fn staff_network_details_show_only_at_or_above_their_level() {
        let cases: &[(Role, Option<&str>, bool)] = &[
            (ClientAdmin, Some("platform_admin"), false),
            (ClientAdmin, Some("agency_admin"), false),
            (ClientAdmin, Some("agency_user"), false),
            (ClientAdmin, Some("client_user"), true),
            (ClientAdmin, Some("client_admin"), true),
            (ClientAdmin, Some("system"), true),
            (ClientAdmin, None, true),
            (AgencyAdmin, Some("platform_admin"), false),
            (AgencyAdmin, Some("agency_user"), true),
            (AgencyAdmin, Some("client_viewer"), true),
            (PlatformAdmin, Some("platform_admin"), true),
            (PlatformAdmin, Some("client_viewer"), true),
        ];
        for (viewer, actor, want) in cases {
            assert_eq!(shows_network(&of_role(*viewer), *actor), *want, "{viewer:?} viewing {actor:?}");
        }
    }

    #[test]
    fn permission_names_round_trip_through_serde() {
        for p in Permission::ALL {
            assert_eq!(serde_json::to_value(p).unwrap(), serde_json::json!(p.as_str()));
            assert_eq!(Permission::parse(p.as_str()), Some(*p));
        }
    }
}
