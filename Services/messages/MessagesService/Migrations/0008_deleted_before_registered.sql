-- A deletion that reaches messages before the account's registration is written as a new
-- known_users row, deleted already (MessagesStore.markDeleted). The account may be in
-- conversations by then: its creator's own account is not looked up, so one can create a group
-- before its registration arrives. The row's insert moves their members' version on, as the
-- deletion of an account messages knew does (0007), so no cached roster keeps it as a member.
CREATE TRIGGER member_account_deleted_on_insert AFTER INSERT ON known_users
    FOR EACH ROW WHEN (NEW.deleted_at IS NOT NULL) EXECUTE FUNCTION member_account_deleted();
