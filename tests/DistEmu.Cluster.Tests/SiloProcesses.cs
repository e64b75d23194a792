using System.Diagnostics;
using System.Globalization;
using System.Text;
using DistEmu.Client;
using DistEmu.Silo;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace DistEmu.Cluster.Tests;

/// <summary>
/// A cluster of silo processes (the silo program) on a membership table — by default the redis server named by
/// DISTEMU_TEST_REDIS, or a PostgreSQL database (adonet clustering; scripts/test.sh starts both servers) — with a
/// cluster id of its own, and a cluster client on it. Dispose kills the processes.
/// </summary>
public sealed class SiloProcesses : IDisposable
{
    public const string RedisVariable = "DISTEMU_TEST_REDIS";
    public const string PostgresVariable = "DISTEMU_TEST_POSTGRES";

    private readonly List<Process> _silos = new();
    private readonly StringBuilder _log = new();
    private IHost? _client;

    public Membership Membership { get; }
    /// <summary>The redis server's HOST:PORT (redis membership).</summary>
    public string Redis => Membership.Address;
    /// <summary>What --cluster takes: redis://HOST:PORT or the postgres:// URL.</summary>
    public string Connection => Membership.Kind == "redis" ? "redis://" + Membership.Address : Membership.Address;
    public string ClusterId { get; } = "test-" + Guid.NewGuid().ToString("N")[..12];
    public ClusterTarget Target => new(Membership, ClusterId, ClusterTarget.DefaultId);
    /// <summary>The silo processes, in start order.</summary>
    public IReadOnlyList<Process> Processes => _silos;
    public IReadOnlyList<int> SiloPorts { get; }

    public static string RequireRedis() => Environment.GetEnvironmentVariable(RedisVariable) is { Length: > 0 } r ? r
        : throw new InvalidOperationException($"{RedisVariable} is not set: the cluster tests need a redis server (HOST:PORT); scripts/test.sh installs and starts one");

    /// <summary>The PostgreSQL server for the adonet tests, as postgres://USER@HOST:PORT/DATABASE (a superuser: tests create databases).</summary>
    public static string RequirePostgres() => Environment.GetEnvironmentVariable(PostgresVariable) is { Length: > 0 } p ? p
        : throw new InvalidOperationException($"{PostgresVariable} is not set: the PostgreSQL membership tests need a server (postgres://USER@HOST:PORT/DATABASE); scripts/test.sh installs and starts one");

    public SiloProcesses(int count, Membership? membership = null)
    {
        Membership = membership ?? Membership.Redis(RequireRedis(), m => new InvalidOperationException(m), RedisVariable);
        var ports = new List<int>();
        try
        {
            string dll = SiloDll();
            for (int i = 0; i < count; i++)
            {
                int siloPort = SiloHosting.FreePort(), gatewayPort = SiloHosting.FreePort();
                ports.Add(siloPort);
                var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
                foreach (var a in new[] { dll }.Concat(Membership.SiloArguments()).Concat(["--silo-port", Str(siloPort), "--gateway-port", Str(gatewayPort), "--cluster-id", ClusterId]))
                    psi.ArgumentList.Add(a);
                var p = Process.Start(psi)!;
                int n = i;
                p.OutputDataReceived += (_, e) => { if (e.Data != null) lock (_log) _log.AppendLine($"silo{n}: {e.Data}"); };
                p.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (_log) _log.AppendLine($"silo{n}! {e.Data}"); };
                p.BeginOutputReadLine();
                p.BeginErrorReadLine();
                _silos.Add(p);
            }
            SiloPorts = ports;
            WaitActive(count).GetAwaiter().GetResult();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    private static string Str(int n) => n.ToString(CultureInfo.InvariantCulture);

    /// <summary>The silo program next to the test assembly (an Exe project reference), else under src/Silo/bin.</summary>
    private static string SiloDll()
    {
        var here = Path.Combine(AppContext.BaseDirectory, "DistEmu.Silo.dll");
        if (File.Exists(here) && File.Exists(Path.ChangeExtension(here, ".runtimeconfig.json"))) return here;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            foreach (var config in new[] { "Release", "Debug" })
            {
                var candidate = Path.Combine(dir.FullName, "src", "Silo", "bin", config, "net10.0", "DistEmu.Silo.dll");
                if (File.Exists(candidate)) return candidate;
            }
        }
        throw new FileNotFoundException("DistEmu.Silo.dll not found next to the tests or under src/Silo/bin (build the solution first)");
    }

    public string Log()
    {
        lock (_log) return _log.ToString();
    }

    public IClusterClient Client => _client!.Services.GetRequiredService<IClusterClient>();

    private async Task WaitActive(int count)
    {
        var deadline = Stopwatch.StartNew();
        Exception? last = null;
        while (deadline.Elapsed < TimeSpan.FromSeconds(60))
        {
            if (_silos.FirstOrDefault(p => p.HasExited) is { } dead)
                throw new InvalidOperationException($"a silo exited with code {dead.ExitCode}:\n{Log()}");
            try
            {
                _client ??= await AttachedOrleans.ConnectAsync(Target, TimeSpan.FromSeconds(10));
                var silos = await ClusterStatus.QueryAsync(Client);
                if (silos.Count(s => s.Status == "Active") >= count) return;
            }
            catch (Exception e)
            {
                last = e;
                if (_client != null) { await AttachedOrleans.StopQuietly(_client); _client = null; }
            }
            await Task.Delay(500);
        }
        throw new TimeoutException($"{count} silos did not become active within 60 s (last error: {last?.Message}):\n{Log()}");
    }

    public void Dispose()
    {
        if (_client != null) AttachedOrleans.StopQuietly(_client).GetAwaiter().GetResult();
        _client = null;
        foreach (var p in _silos)
        {
            try
            {
                if (!p.HasExited) p.Kill(entireProcessTree: true);
                p.WaitForExit(5000);
            }
            catch (InvalidOperationException) { }
            p.Dispose();
        }
        _silos.Clear();
    }
}
