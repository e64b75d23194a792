using System.Net;

namespace DistEmu.Silo;

/// <summary>A command-line error of the silo program (exit code 2).</summary>
public sealed class SiloArgsException(string message) : Exception(message);

/// <summary>The options of the silo program (<c>dotnet run --project src/Silo -- …</c>, <c>distemu silo …</c>).</summary>
public sealed record SiloSettings
{
    /// <summary>The silo program's generated help (what <c>--help</c> prints).</summary>
    public static string Help
    {
        get
        {
            var help = new StringWriter();
            SiloProgram.RootCommand(new SiloCommandLine()).Parse(["--help"]).Invoke(new() { Output = help, Error = TextWriter.Null });
            return help.ToString();
        }
    }

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

    /// <summary>The settings of a command line; a <see cref="SiloArgsException"/> names what is wrong with it.</summary>
    public static SiloSettings Parse(string[] args)
    {
        var options = new SiloCommandLine();
        var parsed = SiloProgram.RootCommand(options).Parse(args);
        if (CommandLineError.Of(parsed, "distemu silo") is { } error)
            throw new SiloArgsException(error.Message);
        return options.Read(parsed);
    }
}
