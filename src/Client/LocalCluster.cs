using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using DistEmu.Silo;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace DistEmu.Client;

/// <summary>
/// A cluster of silo processes on this host (the silo program, DistEmu.Silo.dll beside this assembly, on loopback and
/// free ports) with a membership table: the one given, else a redis-server started here on a free loopback port for
/// this cluster only. Dispose stops all of it — silos (SIGTERM: they leave the cluster), then redis — and the end of
/// this process (SIGTERM, Ctrl-C that ends it) kills it all through a process-exit hook, so no silo outlives the
/// command that started it.
/// </summary>
public sealed class LocalCluster : IDisposable
{
    private readonly List<Process> _silos = new();
    private readonly List<int> _siloPorts = new();
    private readonly StringBuilder _log = new();
    private readonly EventHandler _onExit;
    private Process? _redis;
    private IHost? _client;

    private LocalCluster(string clusterId)
    {
        ClusterId = clusterId;
        _onExit = (_, _) => Kill();
        AppDomain.CurrentDomain.ProcessExit += _onExit;
    }

    public string ClusterId { get; }
    public Membership Membership { get; private set; } = null!;
    public ClusterTarget Target => new(Membership, ClusterId, ClusterTarget.DefaultId);

    /// <summary>The silo processes, in start order.</summary>
    public IReadOnlyList<Process> Silos => _silos;
    public IReadOnlyList<int> SiloPorts => _siloPorts;

    /// <summary>The redis-server started for this cluster (null when a membership table was given).</summary>
    public Process? Redis => _redis;

    /// <summary>A cluster client, connected once every silo is active.</summary>
    public IClusterClient Client => _client!.Services.GetRequiredService<IClusterClient>();

    /// <summary>Every process this cluster started (silos and redis).</summary>
    public IEnumerable<Process> Processes => _redis is null ? _silos : _silos.Append(_redis);

    public string Log()
    {
        lock (_log) return _log.ToString();
    }

    /// <summary>Starts <paramref name="silos"/> silo processes and waits (up to <paramref name="timeout"/>) until all are active.</summary>
    /// <param name="membership">The membership table; null: start a redis-server here (needs redis-server on PATH).</param>
    public static async Task<LocalCluster> StartAsync(int silos, Membership? membership, string clusterId, TimeSpan timeout)
    {
        if (silos < 1) throw new ArgumentOutOfRangeException(nameof(silos), silos, "at least one silo");
        var cluster = new LocalCluster(clusterId);
        try
        {
            cluster.Membership = membership ?? await cluster.StartRedisAsync(timeout);
            string dll = SiloDll();
            for (int i = 0; i < silos; i++)
            {
                int siloPort = SiloHosting.FreePort(), gatewayPort = SiloHosting.FreePort();
                cluster._siloPorts.Add(siloPort);
                cluster._silos.Add(cluster.Start($"silo{i}", DotnetHost(), [dll, .. cluster.Membership.SiloArguments(),
                    "--silo-port", Str(siloPort), "--gateway-port", Str(gatewayPort), "--cluster-id", clusterId]));
            }
            await cluster.WaitActive(silos, timeout);
            return cluster;
        }
        catch
        {
            cluster.Dispose();
            throw;
        }
    }

    private static string Str(int n) => n.ToString(CultureInfo.InvariantCulture);

    /// <summary>The dotnet host running this process (or the one on PATH), to run the silo program with.</summary>
    private static string DotnetHost() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host
        : Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet" ? Environment.ProcessPath! : "dotnet";

    /// <summary>The silo program: an Exe project referenced by this one, so its dll and runtimeconfig sit beside ours.</summary>
    public static string SiloDll()
    {
        var dll = Path.Combine(Path.GetDirectoryName(typeof(SiloProgram).Assembly.Location)!, "DistEmu.Silo.dll");
        return File.Exists(Path.ChangeExtension(dll, ".runtimeconfig.json")) ? dll
            : throw new FileNotFoundException($"the silo program {dll} (with its runtimeconfig.json) is missing: build src/Silo");
    }

    private Process Start(string name, string file, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {file}");
        p.OutputDataReceived += (_, e) => { if (e.Data != null) lock (_log) _log.AppendLine($"{name}: {e.Data}"); };
        p.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (_log) _log.AppendLine($"{name}! {e.Data}"); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    private async Task<Membership> StartRedisAsync(TimeSpan timeout)
    {
        string? server = Environment.GetEnvironmentVariable("PATH")?.Split(Path.PathSeparator)
            .Select(d => Path.Combine(d, "redis-server")).FirstOrDefault(File.Exists);
        if (server is null)
            throw new UsageException("--silos: starting local silos needs a membership table: redis-server is not on PATH (install it, e.g. apt-get install redis-server) or pass --cluster");
        int port = SiloHosting.FreePort();
        _redis = Start("redis", server, ["--port", Str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            if (_redis.HasExited) throw new InvalidOperationException($"redis-server exited with code {_redis.ExitCode}:\n{Log()}");
            try
            {
                using var tcp = new TcpClient();
                await tcp.ConnectAsync("127.0.0.1", port);
                return Membership.Redis($"127.0.0.1:{port}", m => new InvalidOperationException(m), "redis");
            }
            catch (SocketException)
            {
                await Task.Delay(100);
            }
        }
        throw new TimeoutException($"redis-server did not listen on 127.0.0.1:{port} within {timeout.TotalSeconds:F0} s:\n{Log()}");
    }

    private async Task WaitActive(int count, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        Exception? last = null;
        while (clock.Elapsed < timeout)
        {
            if (_silos.FirstOrDefault(p => p.HasExited) is { } dead)
                throw new InvalidOperationException($"a silo exited with code {dead.ExitCode}:\n{Log()}");
            try
            {
                _client ??= await AttachedOrleans.ConnectAsync(Target, TimeSpan.FromSeconds(10));
                var silos = await ClusterStatus.QueryAsync(Client);
                if (silos.Count(s => s.Status == "Active") >= count) return;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                last = e;
                if (_client != null) { await AttachedOrleans.StopQuietly(_client); _client = null; }
            }
            await Task.Delay(500);
        }
        throw new TimeoutException($"{count} silos did not become active within {timeout.TotalSeconds:F0} s (last error: {last?.Message}):\n{Log()}");
    }

    /// <summary>The active silos' addresses, sorted (the order placement and <see cref="CallCost"/> use).</summary>
    public async Task<List<string>> ActiveSilosAsync() =>
        (await ClusterStatus.QueryAsync(Client)).Where(s => s.Status == "Active").Select(s => s.Address).ToList();

    /// <summary>How long silos get to leave the cluster after SIGTERM (the silo's own shutdown timeout is 10 s).</summary>
    public static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(12);

    private static void Kill(IEnumerable<Process> processes)
    {
        foreach (var p in processes.ToList())
        {
            try
            {
                if (!p.HasExited) p.Kill(entireProcessTree: true);
                p.WaitForExit(5000);
            }
            catch (InvalidOperationException) { } // never started or already reaped
        }
    }

    private void Kill() => Kill(Processes);

    /// <summary>
    /// SIGTERM to the silos, so each leaves the cluster and marks itself dead in the membership table (a killed silo
    /// stays "Active" there until the others vote it out: a user's own table would list ghosts), then SIGKILL for any
    /// still up after <see cref="StopGrace"/>; the redis-server goes last, as the silos need it to leave.
    /// </summary>
    private void StopGracefully()
    {
        var running = _silos.Where(p => !HasExited(p)).ToList();
        foreach (var p in running) Terminate(p);
        var clock = Stopwatch.StartNew();
        foreach (var p in running)
        {
            var left = StopGrace - clock.Elapsed;
            if (left > TimeSpan.Zero && !HasExited(p)) p.WaitForExit(left);
        }
        Kill(_silos);
        if (_redis != null) Kill([_redis]);
    }

    private static bool HasExited(Process p)
    {
        try
        {
            return p.HasExited;
        }
        catch (InvalidOperationException)
        {
            return true; // never started or already reaped
        }
    }

    /// <summary>kill -TERM: .NET's Process has no portable way to send SIGTERM, and the generic host stops cleanly on it.</summary>
    public static void Terminate(Process p)
    {
        try
        {
            using var kill = Process.Start(new ProcessStartInfo("kill", ["-TERM", p.Id.ToString(CultureInfo.InvariantCulture)])
            {
                UseShellExecute = false,
                RedirectStandardError = true,
            });
            kill?.WaitForExit(2000);
        }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            // Already gone, or no kill(1): the SIGKILL after the grace period still stops it.
        }
    }

    public void Dispose()
    {
        AppDomain.CurrentDomain.ProcessExit -= _onExit;
        if (_client != null) AttachedOrleans.StopQuietly(_client).GetAwaiter().GetResult();
        _client = null;
        StopGracefully();
        foreach (var p in Processes) p.Dispose();
        _silos.Clear();
        _redis = null;
    }
}
