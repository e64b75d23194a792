using System.Text.Json;
using DistEmu.Silo;
using Npgsql;

namespace DistEmu.Cluster.Tests;

/// <summary>
/// A database of its own on the PostgreSQL server named by DISTEMU_TEST_POSTGRES (scripts/test.sh starts a throwaway
/// one), dropped afterwards, so <c>db init</c> meets a really empty database.
/// </summary>
public sealed class ScratchDatabase : IDisposable
{
    private readonly string _server = SiloProcesses.RequirePostgres();

    public string Name { get; } = "distemu_test_" + Guid.NewGuid().ToString("N")[..12];

    /// <summary>postgres://USER@HOST:PORT/NAME: the server's URL with this database.</summary>
    public string Url { get; }

    public ScratchDatabase()
    {
        Url = _server[.._server.LastIndexOf('/')] + "/" + Name;
        Execute($"CREATE DATABASE {Name}");
    }

    public Membership Membership => Membership.Postgres(Url, m => new InvalidOperationException(m), SiloProcesses.PostgresVariable);

    public long Count(string sql)
    {
        using var c = new NpgsqlConnection(Membership.ConnectionString);
        c.Open();
        using var cmd = new NpgsqlCommand(sql, c);
        return Convert.ToInt64(cmd.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }

    private void Execute(string sql)
    {
        var server = Membership.Postgres(_server, m => new InvalidOperationException(m), SiloProcesses.PostgresVariable);
        using var c = new NpgsqlConnection(server.ConnectionString);
        c.Open();
        using var cmd = new NpgsqlCommand(sql, c);
        cmd.ExecuteNonQuery();
    }

    public void Dispose()
    {
        NpgsqlConnection.ClearAllPools();
        Execute($"DROP DATABASE IF EXISTS {Name} WITH (FORCE)");
    }
}

public sealed class PostgresClusterTests : IDisposable
{
    private readonly string _tmp = Directory.CreateTempSubdirectory("distemu-cluster-pg-").FullName;

    public void Dispose() => Directory.Delete(_tmp, true);

    [Fact]
    public void Db_init_creates_the_membership_tables_once_and_a_second_init_changes_nothing()
    {
        using var db = new ScratchDatabase();
        var (code, stdout, stderr) = Cli.Run("db", "init", "--cluster", db.Url);
        Assert.True(code == 0, $"first init: exit {code}: {stderr}");
        Assert.Contains("initialised (PostgreSQL-Main.sql, PostgreSQL-Clustering.sql applied)", stdout);
        long queries = db.Count("SELECT count(*) FROM orleansquery");
        Assert.Equal(DistEmu.Client.DbInit.ClusteringQueryKeys().Count, queries);
        Assert.Equal(0, db.Count("SELECT count(*) FROM orleansmembershiptable"));

        var (again, stdout2, stderr2) = Cli.Run("db", "init", "--cluster", db.Url);
        Assert.True(again == 0, $"second init: exit {again}: {stderr2}");
        Assert.Contains("already initialised", stdout2);
        Assert.Equal(queries, db.Count("SELECT count(*) FROM orleansquery"));
    }

    [Fact]
    public void Db_init_on_a_database_that_is_not_there_fails_with_one_line_and_exit_1()
    {
        using var db = new ScratchDatabase();
        var missing = db.Url + "_absent";
        var (code, _, stderr) = Cli.Run("db", "init", "--cluster", missing);
        Assert.True(code == 1, $"exit {code}: {stderr}");
        Assert.StartsWith("distemu: error: db init on postgres", stderr);
        Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public async Task Two_silos_on_adonet_membership_run_a_machine_across_both()
    {
        using var db = new ScratchDatabase();
        var (init, _, initErr) = Cli.Run("db", "init", "--cluster", db.Url);
        Assert.True(init == 0, initErr);
        using var cluster = new SiloProcesses(2, db.Membership);
        Assert.Equal(2, db.Count($"SELECT count(*) FROM orleansmembershiptable WHERE deploymentid = '{cluster.ClusterId}' AND status = 3")); // 3: Active

        var outDir = Path.Combine(_tmp, "run");
        var (code, stdout, stderr) = Cli.Run("run", "--cluster", db.Url, "--cluster-id", cluster.ClusterId, "--preset", "small",
            "--workload", "page-fault1", "--param", "size_mb=4", "--ops", "1000", "--out", outDir);
        Assert.True(code == 0, stderr + "\n" + cluster.Log());
        Assert.Contains($"cluster {cluster.ClusterId} (service distemu) at postgres 127.0.0.1", stdout);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "stats.json")));
        var r = doc.RootElement;
        Assert.Equal("completed", r.GetProperty("status").GetString());
        Assert.True(r.GetProperty("faults").GetInt64() > 0, "faults were handled");
        Assert.True(r.GetProperty("grain_calls").GetProperty("cross_silo").GetInt64() > 0, "node 1's CPUs call the mm on node 0's silo");

        var silos = await DistEmu.Client.ClusterStatus.QueryAsync(cluster.Client);
        Assert.Equal(2, silos.Count(s => s.Status == "Active"));
        Assert.All(silos.Where(s => s.Status == "Active"), s => Assert.Contains(s.Grains.Keys, k => k.Kind == "cpu"));

        // Stopped with SIGTERM, both silos leave the cluster: the membership table says dead (6), not active ghosts.
        cluster.Dispose();
        Assert.Equal(2, db.Count($"SELECT count(*) FROM orleansmembershiptable WHERE deploymentid = '{cluster.ClusterId}' AND status = 6"));
    }
}
