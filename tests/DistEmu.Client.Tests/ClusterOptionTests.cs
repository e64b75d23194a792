using DistEmu.Silo;

namespace DistEmu.Client.Tests;

/// <summary>The cluster options of the command line and of the silo program: bad input is exit 2, before anything starts.</summary>
public sealed class ClusterOptionTests : InProcessCliTests
{
    [Theory]
    [InlineData("--cluster", "localhost:6379", "expected redis://HOST:PORT")]
    [InlineData("--cluster", "redis://nohost", "expected redis://HOST:PORT")]
    [InlineData("--cluster", "adonet://db", "expected redis://HOST:PORT or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE")]
    [InlineData("--cluster", "postgres://127.0.0.1:5432/db", "no user")]
    [InlineData("--cluster", "postgres://u@127.0.0.1:5432", "no database")]
    [InlineData("--cluster", "postgres://u:secret@127.0.0.1:5432", "'postgres://u:***@127.0.0.1:5432': no database")]
    [InlineData("--cluster-id", "x", "--cluster-id: only with --cluster")]
    public void Bad_cluster_options_exit_2_with_one_line(string option, string value, string message)
    {
        var (code, _, stderr) = Cli("run", option, value, "--ops", "10", "--out", Path.Combine(_tmp, "o"));
        Assert.Equal(2, code);
        Assert.Contains(message, Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
        Assert.Empty(Directory.GetFileSystemEntries(_tmp));
    }

    [Fact]
    public void A_cluster_run_is_not_a_sim_run()
    {
        var (code, _, stderr) = Cli("run", "--cluster", "redis://127.0.0.1:1", "--engine", "sim", "--out", Path.Combine(_tmp, "o"));
        Assert.Equal(2, code);
        Assert.Contains("--cluster", stderr);
    }

    [Fact]
    public void Cluster_status_needs_the_status_verb_and_has_help()
    {
        Assert.Equal(2, Cli("cluster").Code);
        var (code, stdout, _) = Cli("cluster", "--help");
        Assert.Equal(0, code);
        Assert.Contains("status", stdout); // listed among cluster's commands, each with its own generated help
        (code, stdout, _) = Cli("cluster", "status", "--help");
        Assert.Equal(0, code);
        Assert.Contains("distemu cluster status [options]", stdout);
    }

    [Theory]
    [InlineData(new[] { "--clustering", "adonet" }, "--clustering adonet: needs --postgres")]
    [InlineData(new[] { "--clustering", "redis", "--redis", "h:1", "--postgres", "postgres://u@h/d" }, "--postgres: only with --clustering adonet")]
    [InlineData(new[] { "--clustering", "adonet", "--postgres", "h:5432" }, "--postgres 'h:5432': not a postgres:// URL")]
    [InlineData(new[] { "--clustering", "redis" }, "needs --redis HOST:PORT")]
    [InlineData(new[] { "--clustering", "redis", "--redis", "nohost" }, "--redis 'nohost': expected HOST:PORT")]
    [InlineData(new[] { "--silo-port", "70000" }, "--silo-port '70000'")]
    [InlineData(new[] { "--silo-port", "5000", "--gateway-port", "5000" }, "must differ")]
    [InlineData(new[] { "--bogus" }, "unknown option '--bogus'")]
    public void Bad_silo_options_exit_2_naming_the_option(string[] args, string message)
    {
        var (code, _, stderr) = Cli(["silo", .. args]);
        Assert.Equal(2, code);
        Assert.Contains(message, stderr);
    }

    [Fact]
    public void Silo_settings_default_to_loopback_and_parse_every_option()
    {
        var d = SiloSettings.Parse([]);
        Assert.Equal(System.Net.IPAddress.Loopback, d.Advertise);
        Assert.Equal("localhost", d.Clustering);
        var s = SiloSettings.Parse(["--clustering", "redis", "--redis", "127.0.0.1:6379", "--silo-port", "11112", "--gateway-port=30001", "--cluster-id", "c", "--service-id", "s", "--advertise", "127.0.0.2"]);
        Assert.Equal(("redis", "127.0.0.1:6379", 11112, 30001, "c", "s", "127.0.0.2"), (s.Clustering, s.Redis, s.SiloPort, s.GatewayPort, s.ClusterId, s.ServiceId, s.Advertise.ToString()));
        var (code, stdout, _) = Cli("silo", "--help");
        Assert.Equal(0, code);
        Assert.Contains("--clustering <localhost|redis|adonet>", stdout);
    }

    [Fact]
    public void A_postgres_url_becomes_the_npgsql_connection_string_of_adonet_clustering()
    {
        var s = SiloSettings.Parse(["--clustering", "adonet", "--postgres", "postgres://emu%40lab:p%3Ass@db.local:6543/orleans"]);
        var m = Assert.IsType<Membership>(s.Membership);
        Assert.Equal("adonet", m.Kind);
        var cs = new Npgsql.NpgsqlConnectionStringBuilder(m.ConnectionString);
        Assert.Equal(("db.local", 6543, "orleans", "emu@lab", "p:ss"), (cs.Host, cs.Port, cs.Database, cs.Username, cs.Password));
        Assert.Equal(["--clustering", "adonet", "--postgres", "postgres://emu%40lab:p%3Ass@db.local:6543/orleans"], m.SiloArguments());
        Assert.Equal("postgres://emu%40lab:***@db.local:6543/orleans", m.Url);
        Assert.Equal("postgres db.local:6543/orleans", m.ToString());
        Assert.Equal("postgres h/d", Membership.ParseUrl("postgresql://u:pw@h/d", m => new UsageException(m), "--cluster").ToString());
        Assert.Equal(5432, new Npgsql.NpgsqlConnectionStringBuilder(Membership.ParseUrl("postgresql://u@h/d", m => new UsageException(m), "--cluster").ConnectionString).Port);
        Assert.Equal("redis", Membership.ParseUrl("redis://127.0.0.1:6379", m => new UsageException(m), "--cluster").Kind);
    }

    [Theory]
    [InlineData(new[] { "db" }, "db: expected 'init'")]
    [InlineData(new[] { "db", "init", "--cluster", "redis://127.0.0.1:6379" }, "only a PostgreSQL database has tables to create")]
    [InlineData(new[] { "db", "init", "--cluster", "postgres://u@h" }, "no database")]
    [InlineData(new[] { "db", "init", "--bogus" }, "unknown option '--bogus'")]
    public void Bad_db_init_options_exit_2_with_one_line(string[] args, string message)
    {
        var (code, _, stderr) = Cli(args);
        Assert.Equal(2, code);
        Assert.Contains(message, Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
    }

    [Fact]
    public void Db_init_applies_the_orleans_scripts_embedded_in_the_build_main_first()
    {
        Assert.Equal(["PostgreSQL-Main.sql", "PostgreSQL-Clustering.sql"], DbInit.Scripts);
        Assert.Contains("CREATE TABLE OrleansQuery", DbInit.Script("PostgreSQL-Main.sql"));
        Assert.Contains("CREATE TABLE OrleansMembershipTable", DbInit.Script("PostgreSQL-Clustering.sql"));
        var keys = DbInit.ClusteringQueryKeys();
        Assert.Contains("MembershipReadAllKey", keys);
        Assert.Contains("CleanupDefunctSiloEntriesKey", keys);
        Assert.Equal(9, keys.Count);
    }
}
