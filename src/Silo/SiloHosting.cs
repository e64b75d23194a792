using System.Net;
using System.Net.Sockets;
using DistEmu.Grains.Placement;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using Orleans.Hosting.Kubernetes;
using Orleans.Runtime.Placement;

namespace DistEmu.Silo;

/// <summary>
/// The silo host. The embedded default is one silo in the calling process with localhost clustering, on free
/// loopback ports (so runs and tests never collide), logging only warnings; its grain factory is the client.
/// </summary>
public static class SiloHosting
{
    /// <param name="activityPropagation">Orleans' Activity propagation through grain calls (--trace-orleans).</param>
    public static async Task<IHost> StartEmbeddedAsync(bool activityPropagation = false, CancellationToken cancellationToken = default)
    {
        int siloPort = FreePort(), gatewayPort = FreePort();
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.UseOrleans(silo =>
        {
            silo.UseLocalhostClustering(siloPort, gatewayPort, serviceId: "distemu", clusterId: $"distemu-{Environment.ProcessId}-{siloPort}");
            AddDistEmu(silo);
            if (activityPropagation) silo.AddActivityPropagation();
        });
        var host = builder.Build();
        await host.StartAsync(cancellationToken);
        return host;
    }

    /// <summary>
    /// How long a call between grains may go unanswered. Not a liveness check: calls to a silo that membership declares
    /// dead fail at once (SiloUnavailableException), and a busy host, a 4,096-CPU machine or a fully traced run may keep
    /// a call waiting long (a barrier, a lock queue, a collection). Only a hung cluster ever reaches it.
    /// </summary>
    public static readonly TimeSpan GrainResponseTimeout = TimeSpan.FromHours(12);

    /// <summary>
    /// How long an external client's own short calls (a run's status, a stop, the membership) may go unanswered. An
    /// external client is not told when a gateway's silo dies, so its calls through it end only here; a status call
    /// that ends so is tried again, and the run's fate is read from membership (<see cref="RunSilos"/>).
    /// </summary>
    public static readonly TimeSpan ClientResponseTimeout = TimeSpan.FromSeconds(30);

    /// <summary>
    /// A silo of its own (the silo program, <c>distemu silo</c>): localhost clustering (a one-silo development cluster)
    /// or a membership table (<see cref="SiloSettings.Membership"/>: redis, or PostgreSQL through ADO.NET), listening on
    /// the advertised address only (loopback by default).
    /// </summary>
    public static IHost BuildSilo(SiloSettings s)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(c => c.SingleLine = true);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        // SIGTERM: leave the cluster cleanly, but do not hang on a cluster (or redis) that is already gone.
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(10));
        builder.UseOrleans(silo =>
        {
            if (s.Membership is { } membership)
            {
                membership.UseOn(silo);
                silo.Configure<ClusterOptions>(o =>
                {
                    o.ClusterId = s.ClusterId;
                    o.ServiceId = s.ServiceId;
                });
                if (s.Kubernetes)
                {
                    // The pod's name, address and (when set) cluster/service ids come from the downward API and override
                    // the ones above; Orleans watches the pods. Only the ports are ours.
                    silo.Configure<EndpointOptions>(o =>
                    {
                        o.SiloPort = s.SiloPort;
                        o.GatewayPort = s.GatewayPort;
                        // Orleans already fills in the host's first address, so Kubernetes hosting's own POD_IP step
                        // (which only fills an empty one) never runs: take the pod's address here.
                        if (Environment.GetEnvironmentVariable(KubernetesHostingOptions.PodIPEnvironmentVariable) is { Length: > 0 } podIp)
                            o.AdvertisedIPAddress = IPAddress.Parse(podIp);
                    });
                    silo.UseKubernetesHosting();
                }
                else
                    silo.ConfigureEndpoints(s.Advertise, s.SiloPort, s.GatewayPort, listenOnAnyHostAddress: false);
            }
            else
            {
                silo.UseLocalhostClustering(s.SiloPort, s.GatewayPort, serviceId: s.ServiceId, clusterId: s.ClusterId);
                if (!IPAddress.IsLoopback(s.Advertise))
                    silo.ConfigureEndpoints(s.Advertise, s.SiloPort, s.GatewayPort, listenOnAnyHostAddress: false);
            }
            AddDistEmu(silo);
        });
        return builder.Build();
    }

    /// <summary>
    /// What every DistEmu silo has: the runs' shared descriptions (<see cref="Grains.Support.RunCatalog"/>), the grain-call counter (calls received, and of those sent from another silo) and
    /// the NUMA placement (DESIGN principle 6). With <paramref name="numaPlacement"/> false, grains marked for NUMA
    /// placement go to a random compatible silo instead (topology-blind placement, to compare against).
    /// </summary>
    public static ISiloBuilder AddDistEmu(ISiloBuilder silo, bool numaPlacement = true)
    {
        // Orleans' default grain directory, when a silo dies, deactivates every activation on the survivors whose
        // directory entry that silo held (about half of them with two silos): the machine, the mm, CPUs of other nodes
        // lost their run state with a silo they did not live on. The distributed directory (Orleans 9.2+, still marked
        // experimental) recovers those entries from the survivors instead, so a lost silo takes only its own grains.
#pragma warning disable ORLEANSEXP003
        silo.AddDistributedGrainDirectory();
#pragma warning restore ORLEANSEXP003
        silo.Configure<SiloMessagingOptions>(o => o.ResponseTimeout = GrainResponseTimeout);
        // Each run's configuration and machine spec, read once per silo and shared by the run's grains here.
        silo.Services.AddSingleton<Grains.Support.RunCatalog>();
        silo.Services.AddSingleton<LocalGrains>();
        silo.Services.AddSingleton<IConfigureGrainContextProvider>(sp => sp.GetRequiredService<LocalGrains>());
        silo.Services.AddSingleton<GrainCallCounter>();
        silo.Services.AddSingleton<IIncomingGrainCallFilter>(sp => sp.GetRequiredService<GrainCallCounter>());
        silo.AddPlacementDirector<SiloKeyPlacement, SiloKeyPlacementDirector>();
        if (numaPlacement)
            silo.AddPlacementDirector<NumaPlacement, NumaPlacementDirector>();
        else
            silo.AddPlacementDirector<NumaPlacement>(_ => new AnySiloPlacementDirector());
        return silo;
    }

    /// <summary>Places on a random compatible silo.</summary>
    private sealed class AnySiloPlacementDirector : IPlacementDirector
    {
        public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
        {
            var silos = context.GetCompatibleSilos(target);
            return Task.FromResult(silos[Random.Shared.Next(silos.Length)]);
        }
    }

    public static long GrainCalls(this IHost host) => host.Services.GetRequiredService<GrainCallCounter>().Calls;

    /// <summary>Of <see cref="GrainCalls"/>, those sent from another silo.</summary>
    public static long CrossSiloGrainCalls(this IHost host) => host.Services.GetRequiredService<GrainCallCounter>().CrossSilo;

    public static IGrainFactory Grains(this IHost host) => host.Services.GetRequiredService<IGrainFactory>();

    /// <summary>A free TCP port on loopback.</summary>
    public static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}
