using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using DistEmu.Client;
using DistEmu.Silo;

namespace DistEmu.Cluster.Tests;

/// <summary>
/// A silo told to stop (SIGTERM) stops, even when its membership store went first (a deploy that stops redis before the
/// silos): Orleans' own stop then never ends, and an orchestrator would have to kill the silo. It says so and exits 0.
/// </summary>
public sealed class SiloStopTests : IDisposable
{
    private readonly List<Process> _processes = new();
    private readonly StringBuilder _log = new();

    private Process Start(string name, string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {file}");
        p.OutputDataReceived += (_, e) => { if (e.Data != null) lock (_log) _log.AppendLine($"{name}: {e.Data}"); };
        p.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (_log) _log.AppendLine($"{name}! {e.Data}"); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        _processes.Add(p);
        return p;
    }

    private string Log()
    {
        lock (_log) return _log.ToString();
    }

    private static string Str(int n) => n.ToString(CultureInfo.InvariantCulture);

    [Fact]
    public async Task A_silo_whose_redis_is_gone_still_stops_on_sigterm_and_says_it_left_uncleanly()
    {
        string server = Environment.GetEnvironmentVariable("PATH")?.Split(Path.PathSeparator)
            .Select(d => Path.Combine(d, "redis-server")).FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("redis-server is not on PATH: scripts/test.sh installs it");
        int port = SiloHosting.FreePort();
        var redis = Start("redis", server, "--port", Str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no");
        var bound = Stopwatch.StartNew(); // only keeps a broken start from hanging the suite
        while (true)
        {
            try
            {
                using var tcp = new TcpClient();
                await tcp.ConnectAsync("127.0.0.1", port);
                break;
            }
            catch (SocketException) when (bound.Elapsed < TimeSpan.FromMinutes(1))
            {
                await Task.Delay(100);
            }
        }
        string host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h ? h : "dotnet";
        var silo = Start("silo", host, LocalCluster.SiloDll(), "--clustering", "redis", "--redis", $"127.0.0.1:{Str(port)}",
            "--cluster-id", "stop-" + Guid.NewGuid().ToString("N")[..8], "--silo-port", Str(SiloHosting.FreePort()), "--gateway-port", Str(SiloHosting.FreePort()));
        while (!Log().Contains("silo: silo up", StringComparison.Ordinal))
        {
            Assert.False(silo.HasExited, $"the silo exited before it was up:\n{Log()}");
            Assert.True(bound.Elapsed < TimeSpan.FromMinutes(2), $"the silo never came up:\n{Log()}");
            await Task.Delay(100);
        }

        redis.Kill();
        await redis.WaitForExitAsync();
        using (var term = Process.Start(new ProcessStartInfo("kill", ["-TERM", Str(silo.Id)]) { UseShellExecute = false }))
            await term!.WaitForExitAsync();

        // The silo gives Orleans 20 s to leave the cluster; a generous cap here only keeps a hang from stalling the suite.
        using var cap = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await silo.WaitForExitAsync(cap.Token);
        silo.WaitForExit(); // the output readers are done
        Assert.True(silo.ExitCode == 0, $"exit code {silo.ExitCode}:\n{Log()}");
        Assert.Contains("stopped without leaving the cluster cleanly", Log());
    }

    public void Dispose()
    {
        foreach (var p in _processes)
        {
            try
            {
                if (!p.HasExited) p.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
            }
            p.Dispose();
        }
    }
}
