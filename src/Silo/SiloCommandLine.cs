using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Net;

namespace DistEmu.Silo;

/// <summary>
/// The silo program's options as System.CommandLine symbols: added to the silo program's own root command and to
/// <c>distemu silo</c>, so both accept exactly the same command line (deploy/ passes it). Values are checked as they
/// are parsed; what needs two options together is checked in <see cref="Read"/>.
/// </summary>
public sealed class SiloCommandLine
{
    public const string Description = "Runs one DistEmu silo until SIGTERM or Ctrl-C (also: dotnet run --project src/Silo -- [options]).";

    private readonly Option<string?> _clustering = new("--clustering")
    {
        HelpName = "localhost|redis|adonet",
        Description = "membership: localhost (one-silo development cluster, default), redis, or adonet (PostgreSQL through Npgsql; create its tables first with distemu db init)",
        CustomParser = r => OneOf(r, "--clustering", "localhost", "redis", "adonet"),
    };

    private readonly Option<string?> _redis = new("--redis")
    {
        HelpName = "HOST:PORT",
        Description = "the redis server holding the membership table (with --clustering redis)",
        CustomParser = r => Checked(r, v => Membership.Redis(v, m => new SiloArgsException(m), "--redis").Address),
    };

    private readonly Option<string?> _postgres = new("--postgres")
    {
        HelpName = "postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE",
        Description = "the database holding the membership table (with --clustering adonet; without a password in the URL, PGPASSWORD or ~/.pgpass)",
        CustomParser = r => Checked(r, v => Membership.Postgres(v, m => new SiloArgsException(m), "--postgres").Address),
    };

    private readonly Option<int?> _siloPort = Port("--silo-port", "silo-to-silo port (default: 11111)");
    private readonly Option<int?> _gatewayPort = Port("--gateway-port", "client gateway port (default: 30000)");

    private readonly Option<IPAddress?> _advertise = new("--advertise")
    {
        HelpName = "IP",
        Description = "the address to listen on and advertise (default: 127.0.0.1)",
        CustomParser = r => Checked(r, v => IPAddress.TryParse(v, out var a) ? a : throw new SiloArgsException($"--advertise '{v}': expected an IP address")),
    };

    private readonly Option<bool> _kubernetes = new("--kubernetes")
    {
        Description = "running in a Kubernetes pod: take the silo's address, name and cluster/service ids from the pod (POD_NAME, POD_NAMESPACE, POD_IP, ORLEANS_CLUSTER_ID, ORLEANS_SERVICE_ID) and let Orleans watch the pods (use with --clustering redis or adonet)",
    };

    private readonly Option<string?> _clusterId = Id("--cluster-id", "cluster id (default: distemu)");
    private readonly Option<string?> _serviceId = Id("--service-id", "service id (default: distemu)");

    public IEnumerable<Option> Options => [_clustering, _redis, _postgres, _siloPort, _gatewayPort, _advertise, _kubernetes, _clusterId, _serviceId];

    public void AddTo(Command command)
    {
        foreach (var option in Options) command.Options.Add(option);
    }

    /// <summary>The settings of a cleanly parsed command line; a <see cref="SiloArgsException"/> for options that do not go together.</summary>
    public SiloSettings Read(ParseResult p)
    {
        var d = new SiloSettings();
        var s = new SiloSettings
        {
            Clustering = p.GetValue(_clustering) ?? d.Clustering,
            Redis = p.GetValue(_redis),
            Postgres = p.GetValue(_postgres),
            SiloPort = p.GetValue(_siloPort) ?? d.SiloPort,
            GatewayPort = p.GetValue(_gatewayPort) ?? d.GatewayPort,
            Advertise = p.GetValue(_advertise) ?? d.Advertise,
            Kubernetes = p.GetValue(_kubernetes),
            ClusterId = p.GetValue(_clusterId) ?? d.ClusterId,
            ServiceId = p.GetValue(_serviceId) ?? d.ServiceId,
        };
        if (s.Clustering == "redis" && s.Redis is null)
            throw new SiloArgsException("--clustering redis: needs --redis HOST:PORT");
        if (s.Clustering != "redis" && s.Redis is not null)
            throw new SiloArgsException("--redis: only with --clustering redis");
        if (s.Clustering == "adonet" && s.Postgres is null)
            throw new SiloArgsException("--clustering adonet: needs --postgres postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE");
        if (s.Clustering != "adonet" && s.Postgres is not null)
            throw new SiloArgsException("--postgres: only with --clustering adonet");
        if (s.SiloPort == s.GatewayPort)
            throw new SiloArgsException($"--silo-port and --gateway-port: both {s.SiloPort}; they must differ");
        if (s.Kubernetes && s.Membership is null)
            throw new SiloArgsException("--kubernetes: the pods' membership needs a table: add --clustering redis --redis HOST:PORT (or --clustering adonet --postgres URL)");
        return s;
    }

    /// <summary>The value of <paramref name="r"/> through <paramref name="convert"/>; its <see cref="SiloArgsException"/> becomes a parse error.</summary>
    internal static T? Checked<T>(ArgumentResult r, Func<string, T> convert) => CommandLineError.Checked<T, SiloArgsException>(r, convert);

    private static string? OneOf(ArgumentResult r, string option, params string[] allowed)
    {
        string v = r.Tokens[^1].Value;
        if (allowed.Contains(v, StringComparer.Ordinal)) return v;
        r.AddError($"{option} '{v}': expected {CommandLineError.Either(allowed)}");
        return null;
    }

    private static Option<int?> Port(string name, string description) => new(name)
    {
        HelpName = "N",
        Description = description,
        CustomParser = r => Checked<int?>(r, v => int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out int p) && p is > 0 and < 65536
            ? p : throw new SiloArgsException($"{name} '{v}': expected a port in 1..65535")),
    };

    private static Option<string?> Id(string name, string description) => new(name)
    {
        HelpName = "ID",
        Description = description,
        CustomParser = r => Checked(r, v => v.Length > 0 ? v : throw new SiloArgsException($"{name}: empty")),
    };
}
