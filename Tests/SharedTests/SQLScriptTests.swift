import PostgresSupport
import Testing

@Suite("Splitting migration files into statements")
struct SQLScriptTests {
    @Test("semicolons in strings, identifiers, dollar quotes and comments do not split")
    func quotingIsRespected() {
        let script = """
            -- a comment; with a semicolon
            CREATE TABLE "odd;name" (note text DEFAULT 'a;b' || 'it''s; fine');
            /* block; /* nested; */ still comment; */
            CREATE FUNCTION f() RETURNS int AS $body$ BEGIN RETURN 1; END; $body$ LANGUAGE plpgsql;
            DO $$ BEGIN PERFORM 1; END $$;
            SELECT E'back\\'slash;', $1::int
            """
        let statements = SQLScript.statements(in: script)
        #expect(statements.count == 4)
        #expect(statements[0].hasSuffix(#"'it''s; fine')"#))
        #expect(statements[1].contains("CREATE FUNCTION f()") && statements[1].hasSuffix("LANGUAGE plpgsql"))
        #expect(statements[2] == "DO $$ BEGIN PERFORM 1; END $$")
        #expect(statements[3] == #"SELECT E'back\'slash;', $1::int"#)
    }

    @Test("empty statements and comment-only tails are dropped")
    func emptiesDropped() {
        #expect(SQLScript.statements(in: ";;\n  ; -- done\n") == [])
        #expect(SQLScript.statements(in: "SELECT 1;\n-- trailing comment") == ["SELECT 1"])
    }
}
