using DistEmu.Silo;

namespace DistEmu.Client.Tests;

/// <summary>The cluster options of the command line and of the silo program: bad input is exit 2, before anything starts.</summary>
public sealed class ClusterOptionTests : InProcessCliTests
{
    [Theory]
    [InlineData("--cluster", "localhost:6379", "expected redis://HOST:PORT")]
    [InlineData("--cluster", "redis://nohost", "expected redis://HOST:PORT")]
    [InlineData("--cluster", "adonet://db", "adonet")]
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
        Assert.Contains("usage: distemu cluster status", stdout);
    }

    [Theory]
    [InlineData(new[] { "--clustering", "adonet" }, "--clustering adonet: not supported")]
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
        Assert.Contains("--clustering localhost|redis", stdout);
    }
}
