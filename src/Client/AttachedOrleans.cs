using System.Diagnostics;
using System.Globalization;
using DistEmu.Abstractions;
using DistEmu.Grains.Placement;
using DistEmu.Kernel.Sim;
using DistEmu.Silo;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;

namespace DistEmu.Client;

/// <summary>
/// An existing cluster to attach to (<c>--cluster redis://HOST:PORT</c> or <c>--cluster postgres://USER@HOST:PORT/DB</c>,
/// with <c>--cluster-id</c>/<c>--service-id</c> naming the cluster in the membership table).
/// </summary>
public sealed record ClusterTarget(Membership Membership, string ClusterId, string ServiceId)
{
    public const string DefaultId = "distemu";

    public static ClusterTarget Parse(string connection, string? clusterId, string? serviceId) =>
        new(Membership.ParseUrl(connection, m => new UsageException(m), "--cluster"), clusterId ?? DefaultId, serviceId ?? DefaultId);

    public override string ToString() => $"cluster {ClusterId} (service {ServiceId}) at {Membership}";
}

/// <summary>The cluster named by --cluster cannot be reached, or no silo of it is alive: the run cannot start (exit 1).</summary>
public sealed class ClusterUnreachableException(string message, Exception inner) : Exception(message, inner);

/// <summary>A cluster client on an existing cluster (redis or PostgreSQL membership): runs a machine there, or inspects the cluster.</summary>
public static class AttachedOrleans
{
    /// <summary>How long a client keeps trying to reach a cluster whose membership table lists no live gateway.</summary>
    public static readonly TimeSpan ConnectPatience = TimeSpan.FromSeconds(5);

    /// <summary>
    /// A client on the cluster. Tries for <paramref name="patience"/> (a silo may be registering); then fails with a
    /// <see cref="ClusterUnreachableException"/> that says whether the table was reachable and listed no silo.
    /// </summary>
    public static async Task<IHost> ConnectAsync(ClusterTarget target, TimeSpan? patience = null)
    {
        var giveUp = Stopwatch.StartNew();
        var limit = patience ?? ConnectPatience;
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Error);
        builder.UseOrleansClient(c =>
        {
            target.Membership.UseOn(c);
            c.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = target.ClusterId;
                o.ServiceId = target.ServiceId;
            });
            c.Configure<ClientMessagingOptions>(o => o.ResponseTimeout = SiloHosting.ClientResponseTimeout);
            c.UseConnectionRetryFilter(async (_, ct) =>
            {
                if (giveUp.Elapsed >= limit) return false;
                await Task.Delay(500, ct);
                return true;
            });
        });
        var host = builder.Build();
        try
        {
            await host.StartAsync();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            host.Dispose();
            bool noGateway = e is SiloUnavailableException || e.InnerException is SiloUnavailableException;
            throw new ClusterUnreachableException(noGateway
                ? $"no silo is registered as active in the membership table {target.Membership.Url} for cluster {target.ClusterId} (service {target.ServiceId}); start one with: distemu silo {string.Join(' ', target.Membership.SiloArguments())} --cluster-id {target.ClusterId}"
                : $"cannot reach {target}: {e.GetType().Name}: {FirstLine(e.Message)}", e);
        }
        return host;
    }

    /// <summary>An exception message's first line, up to its first " - " (redis appends its whole connection state).</summary>
    private static string FirstLine(string s) => s.Split('\n', 2)[0].Split(" - ", 2)[0].Trim();

    /// <summary>Stops the client without waiting long for a cluster that may be half gone.</summary>
    public static async Task StopQuietly(IHost host)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(3));
        try { await host.StopAsync(cts.Token); } catch (Exception e) when (e is not OutOfMemoryException) { }
        host.Dispose();
    }

    /// <param name="placement">The machine file's placement map, checked against the cluster's active silos before the run starts.</param>
    /// <param name="tracing">Spans recorded in the grains, handed to the client during the run and written at its end (null: no tracing).</param>
    /// <param name="progress">The run's status each time the machine grain reports it (the caller shows it).</param>
    public static RunResult Run(ClusterTarget target, SimRunOptions options, long quantumNs, TextWriter stdout, PlacementMap? placement = null,
        OrleansTraceCollector? tracing = null, Action<RunStatus>? progress = null) =>
        RunAsync(target, options, quantumNs, stdout, placement, tracing, progress).GetAwaiter().GetResult();

    private static async Task<RunResult> RunAsync(ClusterTarget target, SimRunOptions options, long quantumNs, TextWriter stdout, PlacementMap? placement,
        OrleansTraceCollector? tracing, Action<RunStatus>? progress)
    {
        var host = await ConnectAsync(target);
        try
        {
            var client = host.Services.GetRequiredService<IClusterClient>();
            if (placement != null)
            {
                var hosts = await client.GetGrain<IManagementGrain>(0).GetHosts(onlyActive: true).WaitAsync(TimeSpan.FromSeconds(10));
                MachineLoader.CheckPlacement(placement, hosts.Count, target.ToString());
            }
            var before = await ReadCounters(client);
            var result = await OrleansRun.Run(client, options, status => progress?.Invoke(status), quantumNs: quantumNs, nodeSilos: placement?.SiloOfNode(), maxSkew: skew => stdout.WriteLine(EmbeddedOrleans.SkewLine(quantumNs, skew)),
                tracing: tracing);
            // Every silo's counters, summed, minus what they were before the run (best effort: other runs on the same
            // cluster at the same time are counted too; a silo lost during the run leaves the sum unknown).
            (long, long)? calls = null;
            if (before != null && result.Status == "completed" && await ReadCounters(client) is { } after)
            {
                long total = 0, cross = 0;
                foreach (var (silo, c) in after)
                {
                    var b = before.GetValueOrDefault(silo);
                    total += c.Calls - (b?.Calls ?? 0);
                    cross += c.CrossSilo - (b?.CrossSilo ?? 0);
                }
                calls = (total, cross);
            }
            result.GrainCalls = calls;
            return result;
        }
        finally
        {
            await StopQuietly(host);
        }
    }

    /// <summary>The grain-call counters of every active silo, or null if one cannot be read.</summary>
    public static async Task<Dictionary<string, SiloCallCounts>?> ReadCounters(IClusterClient client)
    {
        try
        {
            var hosts = await client.GetGrain<IManagementGrain>(0).GetHosts(onlyActive: true).WaitAsync(TimeSpan.FromSeconds(10));
            var reads = hosts.Keys.Select(s => client.GetGrain<ISiloCounterGrain>(s.ToParsableString()).Read().WaitAsync(TimeSpan.FromSeconds(10)));
            var counts = await Task.WhenAll(reads);
            return counts.ToDictionary(c => c.Silo, StringComparer.Ordinal);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return null;
        }
    }
}

/// <summary>One silo of a cluster as <c>distemu cluster status</c> shows it.</summary>
public sealed record SiloReport(string Address, string Status, IReadOnlyDictionary<(string Kind, int Node), int> Grains);

/// <summary><c>distemu cluster status</c>: the silos (address, status) and the DistEmu grains each hosts, by kind and emulated node.</summary>
public static class ClusterStatus
{
    public static async Task<List<SiloReport>> QueryAsync(IClusterClient client)
    {
        var mgmt = client.GetGrain<IManagementGrain>(0);
        var hosts = await mgmt.GetHosts(onlyActive: false);
        var active = hosts.Where(h => h.Value == SiloStatus.Active).Select(h => h.Key).ToArray();
        var stats = active.Length == 0 ? [] : await mgmt.GetDetailedGrainStatistics(null, active);
        var bySilo = new Dictionary<SiloAddress, Dictionary<(string, int), int>>();
        foreach (var g in stats)
        {
            string type = g.GrainType ?? "";
            if (!type.Contains("DistEmu.Grains", StringComparison.Ordinal)) continue;
            string kind = KindOf(type);
            int node = GrainKeys.NodeOf(g.GrainId.Key.ToString() ?? "");
            var counts = bySilo.TryGetValue(g.SiloAddress, out var d) ? d : bySilo[g.SiloAddress] = new();
            counts[(kind, node)] = counts.GetValueOrDefault((kind, node)) + 1;
        }
        return hosts.OrderBy(h => h.Key).Select(h => new SiloReport(h.Key.ToParsableString(), h.Value.ToString(),
            bySilo.TryGetValue(h.Key, out var c) ? c : new Dictionary<(string, int), int>())).ToList();
    }

    /// <summary>"DistEmu.Grains.CpuGrain,DistEmu.Grains" → "cpu".</summary>
    public static string KindOf(string grainType)
    {
        string t = grainType.Split(',')[0];
        t = t[(t.LastIndexOf('.') + 1)..];
        if (t.EndsWith("Grain", StringComparison.Ordinal)) t = t[..^"Grain".Length];
        return t.ToLowerInvariant();
    }

    public static string Format(ClusterTarget target, IReadOnlyList<SiloReport> silos)
    {
        var w = new StringWriter();
        w.WriteLine($"{target}: {silos.Count(s => s.Status == "Active")} active of {silos.Count} silos");
        var rows = silos.Select(s => new[]
        {
            s.Address, s.Status, s.Grains.Values.Sum().ToString(CultureInfo.InvariantCulture),
            string.Join(", ", s.Grains.GroupBy(g => g.Key.Node).OrderBy(g => g.Key).Select(g =>
                (g.Key < 0 ? "no node" : $"node{g.Key}") + ": " + string.Join(" ", g.OrderBy(x => x.Key.Kind, StringComparer.Ordinal).Select(x => $"{x.Key.Kind}={x.Value}")))),
        }).ToList();
        w.Write(Report.Table(["silo", "status", "grains", "by emulated node"], rows));
        return w.ToString();
    }

    public static int Run(ClusterTarget target, TextWriter stdout) => RunAsync(target, stdout).GetAwaiter().GetResult();

    private static async Task<int> RunAsync(ClusterTarget target, TextWriter stdout)
    {
        var host = await AttachedOrleans.ConnectAsync(target);
        try
        {
            var silos = await QueryAsync(host.Services.GetRequiredService<IClusterClient>());
            stdout.Write(Format(target, silos));
            return 0;
        }
        finally
        {
            await AttachedOrleans.StopQuietly(host);
        }
    }
}
