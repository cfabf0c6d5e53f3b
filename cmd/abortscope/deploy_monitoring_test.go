package main

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Prometheus's configuration and Grafana's provisioning checked against the
// compose file, and readers of the fields the checks use.

// prometheusUID is the user prom/prometheus runs as (nobody), which must be
// able to read the admin token.
const prometheusUID = "65534"

// TestDeployPrometheus: Prometheus scrapes abortscope's admin port at
// /metrics, with the token the compose file mounts for it.
func TestDeployPrometheus(t *testing.T) {
	d := loadDeployment(t)
	prom := d.project.Services["prometheus"]

	config, ok := cmdFlag(prom.Command, "--config.file")
	if !ok {
		config = "/etc/prometheus/prometheus.yml" // the image's default
	}
	if f := hostFile(prom, config); filepath.Clean(f) != filepath.Join(mustAbs(t, repoRoot), "deploy/prometheus/prometheus.yml") {
		t.Errorf("prometheus reads %s, which is %q on the host, not deploy/prometheus/prometheus.yml", config, f)
	}

	admin, _ := d.serve.get("admin")
	_, adminPort := hostPort(t, "admin", admin)
	target := fmt.Sprintf("abortscope:%d", adminPort)
	tokenFile, _ := d.serve.get("admin-token-file")
	asTok, _ := secretAt(d.project.Services["abortscope"], tokenFile)

	var job *promScrape
	for i, sc := range d.prom.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			if slices.Contains(st.Targets, target) {
				job = &d.prom.ScrapeConfigs[i]
			}
		}
	}
	if job == nil {
		t.Fatalf("deploy/prometheus/prometheus.yml: no job scrapes %s (the abortscope service, --admin's port)", target)
	}
	if job.MetricsPath != "" && job.MetricsPath != "/metrics" {
		t.Errorf("job %s: metrics_path %q, want /metrics", job.JobName, job.MetricsPath)
	}
	if job.Scheme != "" && job.Scheme != "http" {
		t.Errorf("job %s: scheme %q: the admin API speaks plain HTTP", job.JobName, job.Scheme)
	}
	if job.Authorization.Type != "" && job.Authorization.Type != "Bearer" {
		t.Errorf("job %s: authorization type %q, want Bearer", job.JobName, job.Authorization.Type)
	}
	credFile := job.Authorization.CredentialsFile
	promTok, ok := secretAt(prom, credFile)
	switch {
	case credFile == "":
		t.Errorf("job %s: no authorization.credentials_file: /metrics needs the admin token", job.JobName)
	case !ok:
		t.Errorf("job %s: credentials_file %s is no secret the prometheus service mounts (secrets: %+v)", job.JobName, credFile, prom.Secrets)
	case promTok.Source != asTok.Source:
		t.Errorf("job %s: credentials_file %s is secret %s, but abortscope's --admin-token-file is secret %s", job.JobName, credFile, promTok.Source, asTok.Source)
	case promTok.UID != prometheusUID && (promTok.Mode == nil || *promTok.Mode&0o004 == 0):
		t.Errorf("secret %s in prometheus: uid %q, mode %v: Prometheus (uid %s) cannot read it", promTok.Source, promTok.UID, promTok.Mode, prometheusUID)
	}
}

// TestDeployGrafana: Grafana's provisioning points at the Prometheus
// service and at the dashboard file, where the compose file mounts them.
func TestDeployGrafana(t *testing.T) {
	d := loadDeployment(t)
	graf := d.project.Services["grafana"]
	root := mustAbs(t, repoRoot)

	if f := hostFile(graf, "/etc/grafana/provisioning"); f != filepath.Join(root, "deploy/grafana/provisioning") {
		t.Errorf("grafana's /etc/grafana/provisioning is %q on the host, want deploy/grafana/provisioning", f)
	}

	// The datasource: the prometheus service, on its listen port.
	var ds *grafanaDatasource
	for i := range d.ds.Datasources {
		if d.ds.Datasources[i].Type == "prometheus" {
			ds = &d.ds.Datasources[i]
		}
	}
	if ds == nil || ds.UID == "" {
		t.Fatalf("deploy/grafana/provisioning/datasources: no prometheus datasource with a uid (%+v)", d.ds)
	}
	listen, ok := cmdFlag(d.project.Services["prometheus"].Command, "--web.listen-address")
	if !ok {
		listen = ":9090"
	}
	_, promPort, _ := net.SplitHostPort(listen)
	if u, err := url.Parse(ds.URL); err != nil || u.Hostname() != "prometheus" || u.Port() != promPort {
		t.Errorf("datasource %s: url %q, want http://prometheus:%s (the service, --web.listen-address)", ds.Name, ds.URL, promPort)
	}
	if ds.JSONData.TimeInterval != d.prom.Global.ScrapeInterval {
		t.Errorf("datasource %s: timeInterval %q, but Prometheus scrapes every %q ($__rate_interval reads it)", ds.Name, ds.JSONData.TimeInterval, d.prom.Global.ScrapeInterval)
	}

	// The dashboard provider: a directory the compose file mounts from
	// deploy/grafana/dashboards, holding abortscope.json.
	if len(d.dashes.Providers) == 0 {
		t.Fatal("deploy/grafana/provisioning/dashboards/abortscope.yml: no provider")
	}
	pr := d.dashes.Providers[0]
	if pr.Type != "" && pr.Type != "file" {
		t.Errorf("dashboard provider %s: type %q, want file", pr.Name, pr.Type)
	}
	boardFile := hostFile(graf, path.Join(pr.Options.Path, "abortscope.json"))
	if boardFile != filepath.Join(root, "deploy/grafana/dashboards/abortscope.json") {
		t.Errorf("dashboard provider %s reads %s, which is %q on the host, not deploy/grafana/dashboards", pr.Name, pr.Options.Path, boardFile)
	}
	if home := graf.Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]; home != nil {
		if f := hostFile(graf, *home); f == "" {
			t.Errorf("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH %s is no file the compose file mounts", *home)
		} else if _, err := os.Stat(f); err != nil {
			t.Errorf("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH: %v", err)
		}
	}

	// Every panel that queries reads the provisioned datasource.
	b := d.board
	if b.UID == "" || b.Title == "" {
		t.Errorf("dashboard: uid %q, title %q: both are needed", b.UID, b.Title)
	}
	ids := map[int]bool{}
	for _, p := range b.Panels {
		if ids[p.ID] {
			t.Errorf("dashboard: panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if len(p.Targets) == 0 {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != ds.UID {
			t.Errorf("panel %q: datasource %+v, want uid %s", p.Title, p.Datasource, ds.UID)
		}
		for _, tg := range p.Targets {
			if tg.Datasource != nil && tg.Datasource.UID != ds.UID {
				t.Errorf("panel %q, query %s: datasource %+v, want uid %s", p.Title, tg.RefID, tg.Datasource, ds.UID)
			}
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q, query %s: no expr", p.Title, tg.RefID)
			}
		}
	}
}

// promConfig is deploy/prometheus/prometheus.yml.
type promConfig struct {
	Global struct {
		ScrapeInterval string `yaml:"scrape_interval"`
	} `yaml:"global"`
	ScrapeConfigs []promScrape `yaml:"scrape_configs"`
}

type promScrape struct {
	JobName       string `yaml:"job_name"`
	Scheme        string `yaml:"scheme"`
	MetricsPath   string `yaml:"metrics_path"`
	Authorization struct {
		Type            string `yaml:"type"`
		CredentialsFile string `yaml:"credentials_file"`
	} `yaml:"authorization"`
	StaticConfigs []struct {
		Targets []string `yaml:"targets"`
	} `yaml:"static_configs"`
}

// grafanaDatasources is provisioning/datasources/*.yml.
type grafanaDatasources struct {
	Datasources []grafanaDatasource `yaml:"datasources"`
}

type grafanaDatasource struct {
	Name     string `yaml:"name"`
	UID      string `yaml:"uid"`
	Type     string `yaml:"type"`
	URL      string `yaml:"url"`
	JSONData struct {
		TimeInterval string `yaml:"timeInterval"`
	} `yaml:"jsonData"`
}

// grafanaProviders is provisioning/dashboards/*.yml.
type grafanaProviders struct {
	Providers []struct {
		Name    string `yaml:"name"`
		Type    string `yaml:"type"`
		Options struct {
			Path string `yaml:"path"`
		} `yaml:"options"`
	} `yaml:"providers"`
}

// grafanaDashboard is the dashboard JSON.
type grafanaDashboard struct {
	UID    string         `json:"uid"`
	Title  string         `json:"title"`
	Panels []grafanaPanel `json:"panels"`
}

type grafanaPanel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource *grafanaDSRef  `json:"datasource"`
	Panels     []grafanaPanel `json:"panels"` // a row's
	Targets    []struct {
		RefID      string        `json:"refId"`
		Expr       string        `json:"expr"`
		Datasource *grafanaDSRef `json:"datasource"`
	} `json:"targets"`
}

type grafanaDSRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

func flattenPanels(ps []grafanaPanel) []grafanaPanel {
	var out []grafanaPanel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, flattenPanels(p.Panels)...)
	}
	return out
}
