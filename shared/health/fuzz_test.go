package health

import "testing"

// FuzzParseStat: whatever a media server's /stat page holds, reading it
// never panics and never counts sessions below zero from well-formed XML.
func FuzzParseStat(f *testing.F) {
	f.Add([]byte(`<rtmp><bytes_in>10</bytes_in><bytes_out>20</bytes_out><bw_in>8</bw_in><bw_out>16</bw_out><server><application><name>live</name><live><nclients>2</nclients><stream><name>show</name></stream></live></application></server></rtmp>`))
	f.Add([]byte(`<rtmp></rtmp>`))
	f.Add([]byte(`<html>502 Bad Gateway</html>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		st, err := ParseStat(body)
		if err != nil {
			return
		}
		if st.Streams == nil {
			t.Fatal("a parsed page without its stream map")
		}
	})
}
