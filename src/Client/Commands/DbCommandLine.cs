using System.CommandLine;
using DistEmu.Silo;

namespace DistEmu.Client;

/// <summary><c>distemu db init</c>: Orleans' PostgreSQL membership tables, for adonet clustering.</summary>
internal static class DbCommandLine
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var cluster = OptionKinds.Text("--cluster",
            "postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE",
            "the database (default: $DISTEMU_CLUSTER); without a password in the URL, PGPASSWORD or ~/.pgpass");
        var init = new Command("init", "Creates Orleans' PostgreSQL membership tables and queries (deploy/sql: PostgreSQL-Main.sql, then PostgreSQL-Clustering.sql) in DATABASE, in one transaction, so silos can run with --clustering adonet. Idempotent: on an initialised database it says so and changes nothing.")
        {
            cluster,
        };
        init.SetAction(p =>
        {
            string connection = p.GetValue(cluster)
                ?? (Environment.GetEnvironmentVariable("DISTEMU_CLUSTER") is { Length: > 0 } env ? env
                    : throw new UsageException("db init: needs --cluster postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"));
            var membership = Membership.ParseUrl(connection, m => new UsageException(m), "--cluster");
            if (membership.Kind != "adonet")
                throw new UsageException($"db init --cluster '{membership.Url}': only a PostgreSQL database has tables to create (redis needs none)");
            return DbInit.Run(membership, stdout, stderr);
        });
        var command = new Command("db", "db init: create the PostgreSQL membership tables (Orleans' scripts, deploy/sql) for adonet clustering") { init };
        command.SetAction(int (_) => throw new UsageException("db: expected 'init' (distemu db init --cluster postgres://USER@HOST:PORT/DATABASE)"));
        return command;
    }
}
