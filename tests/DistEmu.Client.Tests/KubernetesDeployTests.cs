using DistEmu.Silo;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Hosting.Kubernetes;
using YamlDotNet.RepresentationModel;

namespace DistEmu.Client.Tests;

/// <summary>
/// deploy/k8s cannot be applied here (no cluster), so the manifests are checked against the code: the silo's arguments
/// parse, the downward-API variables and pod labels are the ones Orleans' Kubernetes hosting reads, and the silo built
/// with --kubernetes takes its address and cluster id from the pod but keeps our ports.
/// </summary>
public sealed class KubernetesDeployTests
{
    private static List<YamlMappingNode> Manifests(string file)
    {
        var d = new DirectoryInfo(AppContext.BaseDirectory);
        while (d != null && !File.Exists(Path.Combine(d.FullName, "DistEmu.sln"))) d = d.Parent;
        var yaml = new YamlStream();
        using var reader = new StreamReader(Path.Combine(d!.FullName, "deploy", "k8s", file));
        yaml.Load(reader);
        return yaml.Documents.Select(doc => (YamlMappingNode)doc.RootNode).ToList();
    }

    private static string Scalar(YamlNode n, params string[] path) =>
        ((YamlScalarNode)path.Aggregate(n, (node, key) => ((YamlMappingNode)node)[key])).Value!;

    private static YamlMappingNode Kind(List<YamlMappingNode> docs, string kind) => docs.Single(d => Scalar(d, "kind") == kind);

    private static YamlMappingNode PodTemplate() => (YamlMappingNode)Kind(Manifests("silo.yaml"), "Deployment")["spec"]["template"];

    private static YamlMappingNode Container() => (YamlMappingNode)((YamlSequenceNode)PodTemplate()["spec"]["containers"]).Children.Single();

    [Fact]
    public void The_silo_arguments_exist_parse_and_name_the_redis_service()
    {
        var args = ((YamlSequenceNode)Container()["args"]).Children.Select(c => ((YamlScalarNode)c).Value!).ToArray();
        foreach (var opt in args.Where(a => a.StartsWith("--", StringComparison.Ordinal)))
            Assert.Contains(opt, SiloSettings.Help);
        var s = SiloSettings.Parse(args);
        Assert.True(s.Kubernetes);
        Assert.Equal("redis", s.Clustering);
        var ports = ((YamlSequenceNode)Container()["ports"]).Children.Select(p => int.Parse(Scalar(p, "containerPort"))).ToList();
        Assert.Equal([s.SiloPort, s.GatewayPort], ports);
        var redisService = Kind(Manifests("redis.yaml"), "Service");
        Assert.Equal(s.Redis!.Split(':')[0], Scalar(redisService, "metadata", "name"));
        Assert.Contains(s.Redis.Split(':')[1], ((YamlSequenceNode)redisService["spec"]["ports"]).Children.Select(p => Scalar(p, "port")));
    }

    [Fact]
    public void The_pod_passes_what_orleans_kubernetes_hosting_reads()
    {
        var env = ((YamlSequenceNode)Container()["env"]).Children.ToDictionary(e => Scalar(e, "name"), e => Scalar(e, "valueFrom", "fieldRef", "fieldPath"));
        Assert.Equal("metadata.name", env[KubernetesHostingOptions.PodNameEnvironmentVariable]);
        Assert.Equal("metadata.namespace", env[KubernetesHostingOptions.PodNamespaceEnvironmentVariable]);
        Assert.Equal("status.podIP", env[KubernetesHostingOptions.PodIPEnvironmentVariable]);
        Assert.Equal($"metadata.labels['{KubernetesHostingOptions.ClusterIdLabel}']", env[KubernetesHostingOptions.ClusterIdEnvironmentVariable]);
        Assert.Equal($"metadata.labels['{KubernetesHostingOptions.ServiceIdLabel}']", env[KubernetesHostingOptions.ServiceIdEnvironmentVariable]);
        var labels = (YamlMappingNode)PodTemplate()["metadata"]["labels"];
        Assert.True(labels.Children.ContainsKey(new YamlScalarNode(KubernetesHostingOptions.ClusterIdLabel)));
        Assert.True(labels.Children.ContainsKey(new YamlScalarNode(KubernetesHostingOptions.ServiceIdLabel)));
        // The gateway Service and the Deployment's selector both pick the pods the template labels.
        var docs = Manifests("silo.yaml");
        foreach (var selector in new[] { (YamlMappingNode)Kind(docs, "Service")["spec"]["selector"], (YamlMappingNode)Kind(docs, "Deployment")["spec"]["selector"]["matchLabels"] })
            foreach (var (k, v) in selector.Children)
                Assert.Equal(((YamlScalarNode)v).Value, ((YamlScalarNode)labels[k]).Value);
        Assert.Equal(Scalar(Kind(docs, "ServiceAccount"), "metadata", "name"), Scalar(PodTemplate(), "spec", "serviceAccountName"));
    }

    /// <summary>Every container (and init container) of every pod template in deploy/k8s, with the file it is in.</summary>
    private static List<(string File, YamlMappingNode Container)> AllContainers()
    {
        var dir = Path.Combine(DeployFilesTests.Root(), "deploy", "k8s");
        var found = new List<(string, YamlMappingNode)>();
        foreach (var file in Directory.EnumerateFiles(dir, "*.yaml").Select(Path.GetFileName).Order())
            foreach (var doc in Manifests(file!))
                if (doc.Children.TryGetValue(new YamlScalarNode("spec"), out var spec) && spec is YamlMappingNode specMap
                    && specMap.Children.TryGetValue(new YamlScalarNode("template"), out var template))
                    foreach (var key in new[] { "containers", "initContainers" })
                        if (((YamlMappingNode)template["spec"]).Children.TryGetValue(new YamlScalarNode(key), out var list))
                            found.AddRange(((YamlSequenceNode)list).Children.Select(c => (file!, (YamlMappingNode)c)));
        return found;
    }

    [Fact]
    public void Every_container_runs_a_fixed_tag_ours_the_project_version_and_pulls_only_if_not_present()
    {
        var containers = AllContainers();
        Assert.True(containers.Count >= 2, $"{containers.Count} containers found in deploy/k8s");
        Assert.Contains(containers, c => DeployFilesTests.Image(Scalar(c.Container, "image")).Name == "distemu");
        foreach (var (file, c) in containers)
        {
            var where = $"{file}: container {Scalar(c, "name")}";
            DeployFilesTests.AssertVersioned(where, Scalar(c, "image"));
            Assert.True(c.Children.TryGetValue(new YamlScalarNode("imagePullPolicy"), out var policy) && ((YamlScalarNode)policy).Value == "IfNotPresent",
                $"{where}: imagePullPolicy is not IfNotPresent (a kind/minikube-loaded image would be pulled from a registry)");
        }
    }

    [Fact]
    public void The_services_forward_to_the_ports_the_containers_listen_on()
    {
        var s = SiloSettings.Parse(((YamlSequenceNode)Container()["args"]).Children.Select(c => ((YamlScalarNode)c).Value!).ToArray());
        var named = ((YamlSequenceNode)Container()["ports"]).Children.ToDictionary(p => Scalar(p, "name"), p => int.Parse(Scalar(p, "containerPort")));
        Assert.Equal(s.SiloPort, named["silo"]);
        Assert.Equal(s.GatewayPort, named["gateway"]);
        // The Dockerfile's EXPOSE lists the same two.
        var dockerfile = File.ReadAllText(Path.Combine(DeployFilesTests.Root(), "deploy", "Dockerfile"));
        Assert.Matches($@"(?m)^EXPOSE\s+{s.SiloPort}\s+{s.GatewayPort}\s*$", dockerfile);
        foreach (var port in (YamlSequenceNode)Kind(Manifests("silo.yaml"), "Service")["spec"]["ports"])
        {
            var target = Scalar(port, "targetPort");
            Assert.True(int.TryParse(target, out var n) ? named.ContainsValue(n) : named.ContainsKey(target), $"distemu-gateway forwards to {target}, which the silo container does not listen on");
            Assert.Equal(s.GatewayPort.ToString(), int.TryParse(target, out _) ? target : named[target].ToString());
        }
        var redis = Manifests("redis.yaml");
        var redisPorts = ((YamlSequenceNode)((YamlSequenceNode)Kind(redis, "Deployment")["spec"]["template"]["spec"]["containers"]).Children.Single()["ports"])
            .Children.Select(p => Scalar(p, "containerPort")).ToList();
        foreach (var port in (YamlSequenceNode)Kind(redis, "Service")["spec"]["ports"])
            Assert.Contains(Scalar(port, "targetPort"), redisPorts);
    }

    [Fact]
    public void Kubernetes_without_redis_membership_is_refused()
    {
        var e = Assert.Throws<SiloArgsException>(() => SiloSettings.Parse(["--kubernetes"]));
        Assert.Contains("--kubernetes", e.Message);
    }

    [Fact]
    public void A_kubernetes_silo_advertises_the_pod_address_and_cluster_id_on_our_ports()
    {
        // The downward API's variables, as the pod would have them (only Orleans' Kubernetes hosting reads these).
        var pod = new Dictionary<string, string>
        {
            [KubernetesHostingOptions.PodIPEnvironmentVariable] = "10.1.2.3",
            [KubernetesHostingOptions.PodNameEnvironmentVariable] = "distemu-silo-abc",
            [KubernetesHostingOptions.PodNamespaceEnvironmentVariable] = "emu",
            [KubernetesHostingOptions.ClusterIdEnvironmentVariable] = "from-pod",
        };
        foreach (var (name, value) in pod) Environment.SetEnvironmentVariable(name, value);
        try
        {
            using var host = SiloHosting.BuildSilo(SiloSettings.Parse(["--clustering", "redis", "--redis", "127.0.0.1:1", "--kubernetes", "--silo-port", "12000", "--gateway-port", "32000"]));
            var endpoints = host.Services.GetRequiredService<IOptions<EndpointOptions>>().Value;
            Assert.Equal("10.1.2.3", endpoints.AdvertisedIPAddress.ToString());
            Assert.Equal(12000, endpoints.SiloPort);
            Assert.Equal(32000, endpoints.GatewayPort);
            var cluster = host.Services.GetRequiredService<IOptions<ClusterOptions>>().Value;
            Assert.Equal("from-pod", cluster.ClusterId);
            Assert.Equal("distemu", cluster.ServiceId); // not in the pod's environment: ours stays
            Assert.Equal("distemu-silo-abc", host.Services.GetRequiredService<IOptions<SiloOptions>>().Value.SiloName);
        }
        finally
        {
            foreach (var name in pod.Keys) Environment.SetEnvironmentVariable(name, null);
        }
    }
}
