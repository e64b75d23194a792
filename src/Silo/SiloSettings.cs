using System.Globalization;
using System.Net;

namespace DistEmu.Silo;

/// <summary>A command-line error of the silo program (exit code 2).</summary>
public sealed class SiloArgsException(string message) : Exception(message);

/// <summary>The options of the silo program (<c>dotnet run --project src/Silo -- …</c>, <c>distemu silo …</c>).</summary>
public sealed record SiloSettings
{
    public const string Help = """
        usage: distemu silo [options]      (or: dotnet run --project src/Silo -- [options])

        Runs one DistEmu silo until SIGTERM or Ctrl-C.

          --clustering localhost|redis|adonet
                                membership: localhost (one-silo development cluster, default), redis, or adonet
                                (PostgreSQL through Npgsql; create its tables first with distemu db init)
          --redis HOST:PORT             the redis server holding the membership table (with --clustering redis)
          --postgres postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE
                                the database holding the membership table (with --clustering adonet; without a
                                password in the URL, PGPASSWORD or ~/.pgpass)
          --silo-port N                 silo-to-silo port (default: 11111)
          --gateway-port N              client gateway port (default: 30000)
          --advertise IP                the address to listen on and advertise (default: 127.0.0.1)
          --kubernetes                  running in a Kubernetes pod: take the silo's address, name and cluster/service ids
                                from the pod (POD_NAME, POD_NAMESPACE, POD_IP, ORLEANS_CLUSTER_ID, ORLEANS_SERVICE_ID)
                                and let Orleans watch the pods (use with --clustering redis or adonet)
          --cluster-id ID               cluster id (default: distemu)
          --service-id ID               service id (default: distemu)
          -h, --help                    show this help
        """;

    public string Clustering { get; init; } = "localhost";
    public string? Redis { get; init; }
    /// <summary>With --clustering adonet: the postgres:// URL of the membership database.</summary>
    public string? Postgres { get; init; }
    public int SiloPort { get; init; } = 11111;
    public int GatewayPort { get; init; } = 30000;
    public IPAddress Advertise { get; init; } = IPAddress.Loopback;
    public string ClusterId { get; init; } = "distemu";
    public string ServiceId { get; init; } = "distemu";
    /// <summary>Microsoft.Orleans.Hosting.Kubernetes: identity and endpoints from the pod, pod watching.</summary>
    public bool Kubernetes { get; init; }

    /// <summary>The membership table (redis or adonet clustering); null under localhost clustering.</summary>
    public Membership? Membership => Clustering switch
    {
        "redis" => Membership.Redis(Redis!, m => new SiloArgsException(m), "--redis"),
        "adonet" => Membership.Postgres(Postgres!, m => new SiloArgsException(m), "--postgres"),
        _ => null,
    };

    public static SiloSettings Parse(string[] args)
    {
        var s = new SiloSettings();
        var reader = new OptionReader(args, m => new SiloArgsException(m));
        while (reader.Next())
        {
            string a = reader.Current;
            string Value() => reader.Value();
            int Port(string v) => int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out int p) && p is > 0 and < 65536
                ? p : throw new SiloArgsException($"{a} '{v}': expected a port in 1..65535");
            switch (a)
            {
                case "--clustering":
                    s = s with
                    {
                        Clustering = Value() switch
                        {
                            "localhost" => "localhost",
                            "redis" => "redis",
                            "adonet" => "adonet",
                            var v => throw new SiloArgsException($"--clustering '{v}': expected localhost, redis or adonet"),
                        },
                    };
                    break;
                case "--redis": s = s with { Redis = Membership.Redis(Value(), m => new SiloArgsException(m), a).Address }; break;
                case "--postgres": s = s with { Postgres = Membership.Postgres(Value(), m => new SiloArgsException(m), a).Address }; break;
                case "--silo-port": s = s with { SiloPort = Port(Value()) }; break;
                case "--gateway-port": s = s with { GatewayPort = Port(Value()) }; break;
                case "--advertise":
                    var ip = Value();
                    s = s with { Advertise = IPAddress.TryParse(ip, out var addr) ? addr : throw new SiloArgsException($"--advertise '{ip}': expected an IP address") };
                    break;
                case "--kubernetes": s = s with { Kubernetes = true }; break;
                case "--cluster-id": s = s with { ClusterId = NonEmpty(a, Value()) }; break;
                case "--service-id": s = s with { ServiceId = NonEmpty(a, Value()) }; break;
                default: throw new SiloArgsException($"silo: unknown option '{reader.Raw}' (see --help)");
            }
        }
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

    private static string NonEmpty(string option, string v) => v.Length > 0 ? v : throw new SiloArgsException($"{option}: empty");
}
