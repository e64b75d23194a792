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

          --clustering localhost|redis  membership: localhost (one-silo development cluster, default) or redis
          --redis HOST:PORT             the redis server holding the membership table (with --clustering redis)
          --silo-port N                 silo-to-silo port (default: 11111)
          --gateway-port N              client gateway port (default: 30000)
          --advertise IP                the address to listen on and advertise (default: 127.0.0.1)
          --kubernetes                  running in a Kubernetes pod: take the silo's address, name and cluster/service ids
                                from the pod (POD_NAME, POD_NAMESPACE, POD_IP, ORLEANS_CLUSTER_ID, ORLEANS_SERVICE_ID)
                                and let Orleans watch the pods (use with --clustering redis)
          --cluster-id ID               cluster id (default: distemu)
          --service-id ID               service id (default: distemu)
          -h, --help                    show this help
        """;

    public string Clustering { get; init; } = "localhost";
    public string? Redis { get; init; }
    public int SiloPort { get; init; } = 11111;
    public int GatewayPort { get; init; } = 30000;
    public IPAddress Advertise { get; init; } = IPAddress.Loopback;
    public string ClusterId { get; init; } = "distemu";
    public string ServiceId { get; init; } = "distemu";
    /// <summary>Microsoft.Orleans.Hosting.Kubernetes: identity and endpoints from the pod, pod watching.</summary>
    public bool Kubernetes { get; init; }

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
                            "adonet" => throw new SiloArgsException("--clustering adonet: not supported yet (PostgreSQL membership); use --clustering redis --redis HOST:PORT"),
                            var v => throw new SiloArgsException($"--clustering '{v}': expected localhost or redis"),
                        },
                    };
                    break;
                case "--redis":
                    var r = Value();
                    int colon = r.LastIndexOf(':');
                    if (colon <= 0 || !int.TryParse(r[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out int rp) || rp is < 1 or > 65535)
                        throw new SiloArgsException($"--redis '{r}': expected HOST:PORT");
                    s = s with { Redis = r };
                    break;
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
        if (s.SiloPort == s.GatewayPort)
            throw new SiloArgsException($"--silo-port and --gateway-port: both {s.SiloPort}; they must differ");
        if (s.Kubernetes && s.Clustering != "redis")
            throw new SiloArgsException("--kubernetes: the pods' membership needs a table: add --clustering redis --redis HOST:PORT");
        return s;
    }

    private static string NonEmpty(string option, string v) => v.Length > 0 ? v : throw new SiloArgsException($"{option}: empty");
}
